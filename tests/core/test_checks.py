"""Iranian identifier validators (``services.core.catalogue.checks``).

Valid national ids, bank cards and postal codes are the ones the odd files expect to import
(C19, C27, C28); they are synthetic but pass their checks.
"""

from __future__ import annotations

import pytest

from services.core.catalogue.checks import (
    bank_card,
    iran_mobile,
    iran_national_id,
    luhn,
    postal_code_ir,
)
from services.core.catalogue.fields import FieldError

# --- iran_mobile -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "09120000291",
        "+989120000291",
        "00989120000291",
        "989120000291",
        "9120000291",
        "۰۹۱۲۰۰۰۰۲۹۱",  # Persian digits
        "+٩٨٩١٢٠٠٠٠٢٩١",  # Arabic-Indic digits
        "0912 000 0291",
        "+98 (912) 000-0291",
    ],
)
def test_mobile_forms_are_stored_as_09(text: str) -> None:
    assert iran_mobile(text) == "09120000291"


@pytest.mark.parametrize(
    "text",
    [
        "0912000029",  # one digit short
        "091200002911",  # one digit long
        "02112345678",  # Tehran landline
        "+9809120000291",  # +98 and a 0
        "+19120000291",  # another country code
        "8120000291",
        "0912000029a",
        "0912.000.0291",
        "NA",
        "",
    ],
)
def test_anything_else_is_not_a_mobile(text: str) -> None:
    with pytest.raises(FieldError, match="is not an Iranian mobile number"):
        iran_mobile(text)


# --- luhn / bank_card ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["79927398713", "4111111111111111", "0", "9999001234567891"])
def test_luhn_valid(text: str) -> None:
    assert luhn(text) == text


def test_luhn_maps_persian_digits() -> None:
    assert luhn("۷۹۹۲۷۳۹۸۷۱۳") == "79927398713"


@pytest.mark.parametrize("text", ["79927398710", "4111111111111112", "9999001234567819"])
def test_luhn_wrong_check_digit(text: str) -> None:
    with pytest.raises(FieldError, match="fails the Luhn check"):
        luhn(text)


@pytest.mark.parametrize("text", ["", "4111-1111", "41111 1111", "abc"])
def test_luhn_needs_digits(text: str) -> None:
    with pytest.raises(FieldError, match="digits only"):
        luhn(text)


@pytest.mark.parametrize("text", ["9999001234567891", "9999005555444432"])
def test_bank_cards_from_the_odd_files(text: str) -> None:
    assert bank_card(text) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [("999900123456789", "16 digits"), ("79927398713", "16 digits"), ("9999001234567892", "Luhn")],
)
def test_bank_card_refusals(text: str, message: str) -> None:
    with pytest.raises(FieldError, match=message):
        bank_card(text)


# --- postal_code_ir --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0019876543", "1431234567", "0000012345"])
def test_postal_codes_keep_leading_zeros(text: str) -> None:
    assert postal_code_ir(text) == text


def test_postal_code_with_persian_digits() -> None:
    assert postal_code_ir("۱۴۳۱۲۳۴۵۶۷") == "1431234567"


@pytest.mark.parametrize("text", ["12345", "019876543", "00198765430", "14312-34567", "NA"])
def test_postal_code_must_be_ten_digits(text: str) -> None:
    with pytest.raises(FieldError, match="10 digits"):
        postal_code_ir(text)


# --- iran_national_id ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "0002718286",  # C19
        "0044556675",
        "0011223340",
        "0012345679",  # C28
        "0024681350",
        "0098765434",
        "0031415921",
    ],
)
def test_national_ids_from_the_odd_files(text: str) -> None:
    assert iran_national_id(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "0010000070",  # remainder 0: check digit 0
        "0010000021",  # remainder 1: check digit 1
        "0010000089",  # remainder 2: check digit 11 - 2 = 9
        "0010000011",  # remainder 10: check digit 1
    ],
)
def test_check_digit_branches(text: str) -> None:
    assert iran_national_id(text) == text


def test_national_id_with_persian_and_arabic_digits() -> None:
    assert iran_national_id("۰۰۱۲۳۴۵۶۷۹") == "0012345679"
    assert iran_national_id("٠٠١٢٣٤٥٦٧٩") == "0012345679"
    assert iran_national_id("00123۴۵۶۷۹") == "0012345679"


@pytest.mark.parametrize("text", ["0012345678", "0002718287", "0010000071"])
def test_wrong_check_digit(text: str) -> None:
    with pytest.raises(FieldError, match="check digit is wrong"):
        iran_national_id(text)


@pytest.mark.parametrize("digit", "0123456789")
def test_all_equal_digits_are_refused(digit: str) -> None:
    with pytest.raises(FieldError, match="all digits are equal"):
        iran_national_id(digit * 10)


@pytest.mark.parametrize("text", ["98765434", "2718286", "012345679"])
def test_short_ids_are_refused_not_padded(text: str) -> None:
    # EXPECTED C27: national_id 98765434 -> LEADING_ZEROS_LOST, never '0098765434'
    with pytest.raises(FieldError) as caught:
        iran_national_id(text)
    if len(text) in (8, 9):
        assert "leading zeros were probably lost" in str(caught.value)


@pytest.mark.parametrize("text", ["00123456790", "001234567a", "", "NA", "0012-345679"])
def test_other_national_id_refusals(text: str) -> None:
    with pytest.raises(FieldError, match="not a national id"):
        iran_national_id(text)
