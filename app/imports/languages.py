"""Language names, as insurers write them, mapped to the directory's ISO 639-1 codes."""

import csv
import re
from functools import cache, lru_cache

from app.paths import DATA_DIR
from app.therapists.names import name_key

# Names files use besides the English ones in data/languages.csv: the
# languages' own names and common varieties, for the languages most spoken in
# the US after English (Census ACS). name_key folds accents: "Español" → "espanol".
_OTHER_NAMES = {
    "espanol": "es",
    "castellano": "es",
    "mandarin": "zh",
    "mandarin chinese": "zh",
    "cantonese": "zh",
    "cantonese chinese": "zh",
    "putonghua": "zh",
    "filipino": "tl",
    "farsi": "fa",
    "francais": "fr",
    "creole": "ht",
    "kreyol": "ht",
    "haitian": "ht",
    "deutsch": "de",
    "portugues": "pt",
    "brazilian portuguese": "pt",
    "italiano": "it",
    "polski": "pl",
    "tieng viet": "vi",
}
# "Spanish; Español", "Mandarin/Cantonese": one entry naming a language twice or two.
_SEPARATORS = re.compile(r"\s*[;/,|]\s*")
# "Chinese (Mandarin)", "Spanish (Español)": a language and its variety or own name.
_BRACKETED = re.compile(r"^(.*?)\s*\((.*)\)\s*$")


@lru_cache(maxsize=4096)  # a file spells the same few languages on every provider
def language_codes(name: str) -> tuple[str, ...]:
    """The codes a language entry names (none when it names no language the directory knows)."""
    whole = _codes().get(name_key(name))
    if whole is not None:
        return (whole,)
    bracketed = _BRACKETED.match(name)
    if bracketed is not None:
        return language_codes(bracketed[1]) or language_codes(bracketed[2])
    parts = [_codes().get(name_key(part)) for part in _SEPARATORS.split(name) if part.strip()]
    if len(parts) < 2 or None in parts:
        return ()
    return tuple(dict.fromkeys(code for code in parts if code is not None))


@cache
def _codes() -> dict[str, str]:
    """Name or ISO 639-1 code, as name_key spells it → code."""
    codes: dict[str, str] = dict(_OTHER_NAMES)
    with (DATA_DIR / "languages.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            codes[name_key(row["name"])] = row["code"]
            codes[row["code"]] = row["code"]
    return codes
