"""The NPI check digit, as properties: what Luhn over 80840 + the NPI guarantees, exactly."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.fields import is_valid_npi, normalise_npi, npi_check_digit

DIGITS = "0123456789"
nine_digits = st.text(DIGITS, min_size=9, max_size=9)


def luhn_valid(number: str) -> bool:
    """Luhn over the digits as written, from the textbook: double every second digit from
    the right, subtract 9 from two-digit results, and the total ends in 0."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return total % 10 == 0


@st.composite
def valid_npis(draw: st.DrawFn) -> str:
    first_nine = draw(nine_digits)
    return first_nine + str(npi_check_digit(first_nine))


@given(valid_npis())
def test_nine_digits_and_their_check_digit_are_accepted(npi: str) -> None:
    assert luhn_valid("80840" + npi), "the check digit disagrees with textbook Luhn"
    assert is_valid_npi(npi)
    assert normalise_npi(f" {npi} ") == npi


@given(st.text(DIGITS, min_size=10, max_size=10))
def test_any_ten_digits_are_valid_exactly_when_luhn_over_80840_says_so(number: str) -> None:
    assert is_valid_npi(number) == luhn_valid("80840" + number)


@given(valid_npis(), st.integers(0, 9), st.integers(1, 9))
def test_any_single_digit_change_is_refused(npi: str, position: int, shift: int) -> None:
    changed = str((int(npi[position]) + shift) % 10)
    mistyped = npi[:position] + changed + npi[position + 1 :]
    assert not is_valid_npi(mistyped)
    with pytest.raises(ValueError, match="check digit"):
        normalise_npi(mistyped)


@given(valid_npis(), st.integers(0, 8))
def test_adjacent_transpositions_are_refused_except_09_and_90(npi: str, position: int) -> None:
    first, second = npi[position], npi[position + 1]
    swapped = npi[:position] + second + first + npi[position + 2 :]
    if first == second:
        assert is_valid_npi(swapped)  # nothing changed
    elif {first, second} == {"0", "9"}:
        # Luhn's one blind spot: doubled, 0 and 9 give 0 and 9 again, so 09 and 90
        # add up the same. The check digit cannot catch it, and does not claim to.
        assert is_valid_npi(swapped)
    else:
        assert not is_valid_npi(swapped)


not_ten_ascii_digits = st.text(max_size=14).filter(
    lambda text: not (len(text) == 10 and text.isascii() and text.isdigit())
)


# Digits of other scripts ("١٢٣…") pass str.isdigit() but are not an NPI.
other_digits = st.text(st.characters(categories=["Nd"]), min_size=10, max_size=10).filter(
    lambda text: not text.isascii()
)


@given(not_ten_ascii_digits | other_digits)
def test_anything_but_ten_ascii_digits_is_refused(text: str) -> None:
    assert not is_valid_npi(text)
    if not (len(text.strip()) == 10 and text.strip().isascii() and text.strip().isdigit()):
        with pytest.raises(ValueError, match="10 digits"):
            normalise_npi(text)


@given(valid_npis(), st.integers(1, 3), st.booleans())
def test_a_valid_npi_with_digits_added_or_removed_is_refused(
    npi: str, count: int, add: bool
) -> None:
    altered = npi + "0" * count if add else npi[:-count]
    assert not is_valid_npi(altered)
    with pytest.raises(ValueError, match="10 digits"):
        normalise_npi(altered)
