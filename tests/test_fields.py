"""The field rules shared by the API and the imports: NPI check digits and address keys."""

from collections.abc import Callable

import pytest

from app.fields import (
    is_valid_npi,
    normalise_npi,
    normalise_state,
    normalise_zip,
    npi_check_digit,
)
from app.locations.address import ADDRESS_KEY_LENGTH, address_key


# The CMS example NPI and four real ones from the public NPPES file.
@pytest.mark.parametrize(
    "npi", ["1234567893", "1255334207", "1740283779", "1982607917", "1316940463"]
)
def test_real_npis_pass_their_check_digit(npi: str) -> None:
    assert npi_check_digit(npi[:9]) == int(npi[9])
    assert is_valid_npi(npi)


@pytest.mark.parametrize(
    "npi", ["1234567890", "1255334208", "123456789", "12345678930", "12345678a3"]
)
def test_other_numbers_do_not(npi: str) -> None:
    assert not is_valid_npi(npi)


def test_every_changed_digit_changes_the_check_digit() -> None:
    base = "123456789"
    for position in range(9):
        for digit in "0123456789":
            changed = base[:position] + digit + base[position + 1 :]
            if changed != base:
                assert npi_check_digit(changed) != npi_check_digit(base), changed


@pytest.mark.parametrize(
    ("line1", "line2", "city"),
    [
        ("2300 N. Lincoln Avenue", "Ste. 200", "Chicago"),
        ("2300 North Lincoln Ave", "#200", "CHICAGO"),
        ("2300 n lincoln ave", "Suite #200", "chicago"),
        ("2300 N LINCOLN AVE # 200", None, "Chicago"),
    ],
)
def test_spellings_of_one_address_share_a_key(line1: str, line2: str | None, city: str) -> None:
    key = address_key(line1=line1, line2=line2, city=city, state="il", zip_code="60614-1234")
    assert key == "2300 N LINCOLN AVE # 200|CHICAGO|IL|60614"


def test_accents_do_not_matter_but_numbers_do() -> None:
    accented = address_key(
        line1="12 Calle Méndez", line2=None, city="Mayagüez", state="PR", zip_code="00680"
    )
    plain = address_key(
        line1="12 Calle Mendez", line2=None, city="Mayaguez", state="PR", zip_code="00680"
    )
    other = address_key(
        line1="14 Calle Mendez", line2=None, city="Mayaguez", state="PR", zip_code="00680"
    )
    assert accented == plain != other


def test_a_key_longer_than_its_column_stays_one_per_address() -> None:
    def key(line2: str) -> str:
        return address_key(
            line1="9" * 200, line2=line2, city="Chicago", state="IL", zip_code="60614"
        )

    longest = key("#1" * 100)  # normalised: "# 1 # 1 …", 400 characters of its own
    assert len(longest) == ADDRESS_KEY_LENGTH
    assert key("#1" * 100) == longest
    assert key("Suite 1" + "#1" * 99) == longest  # the same address spelled otherwise
    assert key("#1" * 99 + "#2") != longest  # differs only past the column's end


@pytest.mark.parametrize(
    ("check", "value", "hint"),
    [
        (normalise_npi, "1.65938E+09", "'1.65938E+09' is a number a spreadsheet rewrote"),
        (normalise_npi, "1.659381234e9", "'1.659381234e9' is a number a spreadsheet rewrote"),
        (normalise_zip, "6103", "'6103' may have lost a leading zero to a spreadsheet"),
        (normalise_zip, "501", "'501' may have lost a leading zero to a spreadsheet"),
        (normalise_npi, "1659381234.0", "'1659381234.0' is a number written with a decimal"),
        (normalise_zip, "60606.0", "'60606.0' is a number written with a decimal point"),
    ],
)
def test_what_a_spreadsheet_did_to_a_number_is_named(
    check: Callable[[str], str], value: str, hint: str
) -> None:
    with pytest.raises(ValueError, match="format the column as text") as refused:
        check(value)
    assert hint in str(refused.value)


@pytest.mark.parametrize(("check", "value"), [(normalise_npi, "12345"), (normalise_zip, "6O103")])
def test_other_malformed_numbers_get_no_spreadsheet_hint(
    check: Callable[[str], str], value: str
) -> None:
    with pytest.raises(ValueError, match="must be") as refused:
        check(value)
    assert "spreadsheet" not in str(refused.value)


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("969100000", "96910"),
        ("96910-0000", "96910"),
        ("061063210", "06106-3210"),
        ("60614", "60614"),
    ],
)
def test_a_zip_padded_with_0000_is_its_five_digits(written: str, stored: str) -> None:
    assert normalise_zip(written) == stored


@pytest.mark.parametrize(
    ("written", "code"),
    [("IL", "IL"), ("il", "IL"), ("Illinois", "IL"), ("NEW  YORK", "NY"),
     ("District of Columbia", "DC"), ("Puerto Rico", "PR")],
)  # fmt: skip
def test_a_roster_may_name_a_state_or_give_its_code(written: str, code: str) -> None:
    assert normalise_state(written) == code


def test_a_name_that_is_no_state_is_refused() -> None:
    with pytest.raises(ValueError, match="not a US state"):
        normalise_state("Ontario")
