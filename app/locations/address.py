"""Address normalisation: the key that makes two spellings of one address one location."""

import hashlib
import re
import unicodedata

# The size of the key column (locations.address_key).
ADDRESS_KEY_LENGTH = 400

# USPS Publication 28 abbreviations for the words that vary most in practice.
_ABBREVIATIONS = {
    "STREET": "ST", "AVENUE": "AVE", "AV": "AVE", "ROAD": "RD", "BOULEVARD": "BLVD",
    "DRIVE": "DR", "LANE": "LN", "COURT": "CT", "PLACE": "PL", "PARKWAY": "PKWY",
    "HIGHWAY": "HWY", "CIRCLE": "CIR", "TERRACE": "TER", "SQUARE": "SQ", "TRAIL": "TRL",
    "EXPRESSWAY": "EXPY", "FREEWAY": "FWY", "PIKE": "PIKE", "TURNPIKE": "TPKE",
    "NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W",
    "NORTHEAST": "NE", "NORTHWEST": "NW", "SOUTHEAST": "SE", "SOUTHWEST": "SW",
    "BUILDING": "BLDG", "FLOOR": "FL", "DEPARTMENT": "DEPT", "CENTER": "CTR",
    "MOUNT": "MT", "SAINT": "ST", "FORT": "FT",
    # Unit designators all become one token: "Suite 200", "Ste. 200", "#200".
    "SUITE": "#", "STE": "#", "UNIT": "#", "ROOM": "#", "RM": "#", "APARTMENT": "#", "APT": "#",
}  # fmt: skip


_NOT_KEPT = re.compile(r"[^A-Z0-9# ]")
_REPEATED_UNIT = re.compile(r"(# )+")


def _normalise_part(text: str | None) -> str:
    if not text:
        return ""
    if not text.isascii():  # most addresses are plain ASCII: skip the decomposition
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = _NOT_KEPT.sub(" ", text.upper().replace("#", " # ")).split()
    return " ".join([_ABBREVIATIONS.get(word, word) for word in words])


def address_key(*, line1: str, line2: str | None, city: str, state: str, zip_code: str) -> str:
    """Case, punctuation, accents and common abbreviations do not matter; ZIP+4 suffix does not."""
    street = " ".join(part for part in (_normalise_part(line1), _normalise_part(line2)) if part)
    if "#" in street:
        street = _REPEATED_UNIT.sub("# ", street)
    key = "|".join((street, _normalise_part(city), state.upper(), zip_code[:5]))
    if len(key) <= ADDRESS_KEY_LENGTH:
        return key
    # Two lines of 200 characters and a city of 100 fit their columns but not this
    # one, and normalising can lengthen them ("#1#2" is "# 1 # 2"). The start and a
    # digest of the whole stay one key per address.
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: ADDRESS_KEY_LENGTH - len(digest) - 1]}~{digest}"
