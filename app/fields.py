"""Validated field types shared by every write schema.

Each type normalises what it accepts (a phone number becomes ten digits, a
ZIP+4 gets its hyphen) so the database holds one spelling of each value.
"""

import csv
import math
import re
from datetime import date, datetime
from functools import cache
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, BeforeValidator, Field

from app.paths import DATA_DIR

# Luhn doubling of one digit: 2d, less 9 when that has two digits.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def npi_check_digit(first_nine: str) -> int:
    """Luhn check digit over the card-issuer prefix 80840 and the first nine digits.

    The prefix always adds 24 (the NPI standard's shortcut). Of the nine digits,
    counted from the right with the check digit still to come, the rightmost
    and every second one leftwards are doubled: positions 0, 2, 4, 6, 8.
    """
    digits = [ord(char) - 48 for char in first_nine]
    doubled = sum(_DOUBLED[digit] for digit in digits[0::2])
    return (10 - (24 + doubled + sum(digits[1::2])) % 10) % 10


def is_valid_npi(value: str) -> bool:
    return (
        len(value) == 10
        and value.isascii()
        and value.isdigit()
        and npi_check_digit(value[:9]) == int(value[9])
    )


# What a spreadsheet makes of a long number or a ZIP with leading zeros, in a
# file saved from one: 1659381234 → 1.65938E+09, 06103 → 6103.
_SPREADSHEET_NUMBER = re.compile(r"^\d(?:\.\d+)?E\+?\d+$", re.IGNORECASE)
_SPREADSHEET_HINT = "format the column as text"
# And what a data tool (pandas, for one) writes of a column it read as numbers:
# 1659381234 → 1659381234.0.
_DECIMAL_NUMBER = re.compile(r"^\d+\.0+$")


def _as_number(value: str) -> str:
    return f"{value!r} is a number written with a decimal point ({_SPREADSHEET_HINT})"


def _npi(value: str) -> str:
    value = value.strip()
    if not (len(value) == 10 and value.isascii() and value.isdigit()):
        if _SPREADSHEET_NUMBER.match(value):
            raise ValueError(
                f"NPI must be exactly 10 digits; {value!r} is a number a spreadsheet "
                f"rewrote ({_SPREADSHEET_HINT})"
            )
        if _DECIMAL_NUMBER.match(value):
            raise ValueError(f"NPI must be exactly 10 digits; {_as_number(value)}")
        raise ValueError("NPI must be exactly 10 digits")
    if not is_valid_npi(value):
        raise ValueError("NPI check digit is wrong (Luhn over 80840 + first nine digits)")
    return value


@cache
def us_state_codes() -> frozenset[str]:
    """USPS codes of the states, DC, territories and military post offices."""
    with (DATA_DIR / "us_states.csv").open(encoding="utf-8", newline="") as handle:
        return frozenset(row["code"] for row in csv.DictReader(handle))


@cache
def _state_names() -> dict[str, str]:
    """`ILLINOIS` → `IL`: a state's name, in capitals, to its USPS code."""
    with (DATA_DIR / "us_states.csv").open(encoding="utf-8", newline="") as handle:
        return {row["name"].upper(): row["code"] for row in csv.DictReader(handle)}


def _state_code_or_name(value: str) -> str:
    """A USPS code, or the state's name as roster files also write it ("Illinois")."""
    code = _state_names().get(" ".join(value.split()).upper())
    return code if code is not None else _state(value)


def _state(value: str) -> str:
    code = value.strip().upper()
    if code not in us_state_codes():
        raise ValueError("not a US state, territory or military postal code (e.g. IL, PR)")
    return code


_ZIP = re.compile(r"^(\d{5})(?:-?(\d{4}))?$")


def _zip(value: str) -> str:
    match = _ZIP.match(value.strip())
    if not match:
        if re.fullmatch(r"\d{3,4}", value.strip()):
            raise ValueError(
                f"ZIP must be 5 digits or ZIP+4 (12345 or 12345-6789); {value.strip()!r} may "
                f"have lost a leading zero to a spreadsheet ({_SPREADSHEET_HINT})"
            )
        if _DECIMAL_NUMBER.match(value.strip()):
            raise ValueError(
                f"ZIP must be 5 digits or ZIP+4 (12345 or 12345-6789); {_as_number(value.strip())}"
            )
        raise ValueError("ZIP must be 5 digits or ZIP+4 (12345 or 12345-6789)")
    five, four = match.groups()
    # No +4 is 0000: files (NPPES among them) pad a five-digit ZIP with it.
    return f"{five}-{four}" if four and four != "0000" else five


def _phone(value: str) -> str:
    digits = re.sub(r"[\s().+\-]", "", value.strip())
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError("phone may contain only digits, spaces, ( ) . - and a leading +1")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        raise ValueError("phone must be a 10-digit US number")
    if digits[0] in "01" or digits[3] in "01":
        raise ValueError("phone area code and exchange cannot start with 0 or 1")
    return digits


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


# Pydantic reads a number, or a string of digits, as a Unix timestamp: `"verified_at": 0`
# would be 1970-01-01. The API takes dates and times written as ISO 8601 only.
_ISO_DATE_START = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_text(value: object) -> object:
    if value is None or isinstance(value, date):  # datetime is a date too
        return value
    if isinstance(value, str) and _ISO_DATE_START.match(value.strip()):
        return value
    raise ValueError(
        "must be an ISO 8601 date (2026-01-01) or date and time (2026-11-01T09:30:00Z)"
    )


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _printable(value: str) -> str:
    """Control characters (NUL above all, which PostgreSQL cannot store) are refused."""
    if has_control_characters(value):
        raise ValueError("must not contain control characters or unpaired surrogates")
    return value


# The Unicode "Cc" (control) category (C0, DEL and C1), and unpaired surrogates: a
# JSON "\\ud800" escape decodes to one, and no UTF-8 text (PostgreSQL's) can hold it.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


Npi = Annotated[
    str,
    AfterValidator(_npi),
    Field(description="10-digit National Provider Identifier", examples=["1234567893"]),
]
StateCode = Annotated[str, AfterValidator(_state), Field(examples=["IL"])]
ZipCode = Annotated[str, AfterValidator(_zip), Field(examples=["60614", "60614-2301"])]
Phone = Annotated[
    str,
    AfterValidator(_phone),
    Field(description="US number; stored as 10 digits", examples=["(312) 555-0147"]),
]
Latitude = Annotated[
    float, AfterValidator(_finite), Field(ge=-90, le=90, allow_inf_nan=False, examples=[41.9229])
]
Longitude = Annotated[
    float,
    AfterValidator(_finite),
    Field(ge=-180, le=180, allow_inf_nan=False, examples=[-87.6483]),
]
IsoDate = Annotated[date, BeforeValidator(_iso_text)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_text)]
Name = Annotated[
    str, BeforeValidator(_strip), AfterValidator(_printable), Field(min_length=1, max_length=100)
]
ShortText = Annotated[
    str, BeforeValidator(_strip), AfterValidator(_printable), Field(min_length=1, max_length=200)
]
# Free text with no whitespace trimming rules of its own (tiers, credentials, suffixes).
Label = Annotated[str, BeforeValidator(_strip), AfterValidator(_printable)]

# Record ids are 32-bit on PostgreSQL: a larger number cannot name a record, and
# must be a 422 rather than reach the database.
MAX_ID = 2_147_483_647
RecordId = Annotated[int, Field(ge=1, le=MAX_ID, examples=[1])]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]

# The same checks for code that validates without a Pydantic model (roster imports):
# each returns the normalised value or raises ValueError with the user-facing message.
normalise_npi = _npi
normalise_state = _state_code_or_name
normalise_zip = _zip
normalise_phone = _phone
