"""Free-text specialty names, as insurers write them, mapped to NUCC physical-therapy codes."""

import csv
import re
import unicodedata
from collections.abc import Iterator
from functools import cache, lru_cache

from app.paths import DATA_DIR

# How files name the profession itself. Each is combined with each field of
# practice below ("Neuro PT", "Physical Therapist - Neurology", "Sports
# Physical Therapy"), so the table stays small and the spellings consistent.
_PROFESSION = (
    "physical therapist",
    "physical therapists",
    "physical therapy",
    "physiotherapist",
    "physiotherapy",
    "pt",
)
_PHYSICAL_THERAPIST = "225100000X"
_ASSISTANT = "225200000X"
_PROFESSION_ALONE = {
    "physical therapist": _PHYSICAL_THERAPIST,
    "physical therapists": _PHYSICAL_THERAPIST,
    "physical therapy": _PHYSICAL_THERAPIST,
    "physiotherapist": _PHYSICAL_THERAPIST,
    "physiotherapy": _PHYSICAL_THERAPIST,
    "pt": _PHYSICAL_THERAPIST,
    "dpt": _PHYSICAL_THERAPIST,
    "doctor of physical therapy": _PHYSICAL_THERAPIST,
    "licensed physical therapist": _PHYSICAL_THERAPIST,
    "registered physical therapist": _PHYSICAL_THERAPIST,
    "physical therapist in private practice": _PHYSICAL_THERAPIST,  # Medicare's name
    "physical therapy assistant": _ASSISTANT,
    "physical therapist assistant": _ASSISTANT,
    "physical therapy assistants": _ASSISTANT,
    "physical therapist assistants": _ASSISTANT,
    "physiotherapy assistant": _ASSISTANT,
    "physiotherapist assistant": _ASSISTANT,
    "pta": _ASSISTANT,
}
# Other spellings of each field of practice, besides the NUCC specialization
# and the slug. A field alone ("Neurology", "Sports Medicine") names a
# physician's specialty as often as a therapist's, so it only counts next to
# a profession word.
_FIELD_SYNONYMS = {
    "2251C2600X": ("cardiopulmonary", "cardiovascular and pulmonary", "cardiovascular pulmonary"),
    "2251E1300X": (
        "clinical electrophysiology",
        "clinical electrophysiologic",
        "electrophysiology",
    ),
    "2251E1200X": ("ergonomic",),
    "2251G0304X": ("geriatric", "geriatrics", "gerontology"),
    "2251H1200X": ("hand", "hand therapy"),
    "2251H1300X": ("human factors",),
    "2251N0400X": ("neurologic", "neurological", "neuro", "neurology"),
    "2251X0800X": ("orthopedic", "orthopedics", "orthopaedic", "orthopaedics", "ortho"),
    "2251P0200X": ("pediatric", "paediatric", "paediatrics", "peds"),
    "2251S0007X": ("sports", "sport", "sports medicine"),
}


@lru_cache(maxsize=4096)  # a large file repeats the same few names on every provider
def nucc_code_for(text: str) -> str | None:
    """The NUCC physical-therapy code a specialty name stands for, or None."""
    codes = _codes_by_key()
    found = next((codes[key] for key in _spellings(text) if key in codes), None)
    return found or _by_profession(_key(text))


# Words that name the profession inside a longer name; an aide is not licensed.
_PROFESSION_PHRASES = (
    "physical therapy",
    "physical therapist",
    "physical therapists",
    "physiotherapy",
    "physiotherapist",
    "pt",
    "pta",
)
_ASSISTANT_WORDS = frozenset({"assistant", "assistants", "asst", "pta"})
_NOT_LICENSED = frozenset({"aide", "aides", "technician", "tech"})


def _by_profession(key: str) -> str | None:
    """A longer name that says physical therapy: "Women's Health Physical Therapy",
    "Physical Therapy/Occupational Therapy", "Orthopedic Physical Therapist - OCS".

    Its field counts when the taxonomy has it and it is the only one named;
    otherwise (women's health, vestibular, two fields) it is the profession itself.
    """
    padded, words = f" {key} ", set(key.split())
    if words & _NOT_LICENSED or not any(f" {p} " in padded for p in _PROFESSION_PHRASES):
        return None
    if words & _ASSISTANT_WORDS:
        return _ASSISTANT
    fields = {code for phrase, code in _fields_by_phrase().items() if f" {phrase} " in padded}
    return fields.pop() if len(fields) == 1 else _PHYSICAL_THERAPIST


@cache
def _fields_by_phrase() -> dict[str, str]:
    """Each field of practice's names (specialization, slug, synonyms) → its code."""
    fields: dict[str, str] = {}
    for row in _taxonomy():
        if row["specialization"]:
            names = (row["specialization"], row["slug"], *_FIELD_SYNONYMS.get(row["code"], ()))
            fields.update((_key(name), row["code"]) for name in names)
    return fields


def _spellings(text: str) -> Iterator[str]:
    """The name's key; then without what it puts in brackets ("Physical Therapy
    (PT)"), and turned back from a directory's inverted order ("Therapist,
    Physical"). Brackets count first: "Physical Therapy (Neurology)" is neurology."""
    yield _key(text)
    plain = re.sub(r"\([^()]*\)", " ", text)
    yield _key(plain)
    head, comma, tail = plain.partition(",")
    if comma and "," not in tail:
        yield _key(f"{tail} {head}")


def _key(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", " ", ascii_text.lower().replace("&", " and "))
    return " ".join(words.split())


@cache
def _taxonomy() -> tuple[dict[str, str], ...]:
    """The physical-therapy rows of the NUCC taxonomy (data/nucc_pt_taxonomy.csv)."""
    with (DATA_DIR / "nucc_pt_taxonomy.csv").open(encoding="utf-8", newline="") as handle:
        return tuple(csv.DictReader(handle))


@cache
def _codes_by_key() -> dict[str, str]:
    codes: dict[str, str] = {}
    for row in _taxonomy():
        code = row["code"]
        codes[_key(code)] = code
        codes[_key(row["display_name"])] = code
        if not row["specialization"]:  # the profession itself: its slug names it
            codes[_key(row["classification"])] = code
            codes[_key(row["slug"])] = code
            continue
        # A specialty's slug ("neurology", "sports") names only a field of
        # practice, which is a physician's specialty as often as not, so it
        # counts only next to a profession word, like the synonyms.
        classification = _key(row["classification"])
        fields = {_key(row["specialization"]), _key(row["slug"])}
        fields.update(_key(synonym) for synonym in _FIELD_SYNONYMS.get(code, ()))
        for field in fields:
            for profession in (classification, *_PROFESSION):
                codes[f"{profession} {field}"] = code
                codes[f"{field} {profession}"] = code
    codes.update(_PROFESSION_ALONE)
    return codes
