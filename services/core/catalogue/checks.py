"""Validators for Iranian identifiers; each returns the stored form or raises ``FieldError``.

They take stripped cell text. Persian / Arabic-Indic digits are mapped to ASCII first (cheap,
and Python's ``str.isdigit`` and ``re``'s ``\\d`` would otherwise accept them and store digits
that PostgreSQL casts and look-ups do not treat as numbers). Only ``[0-9]`` is checked after that.

Leading zeros are data: a national id, postal code or card number is never padded. An 8- or
9-digit national id is refused with a hint that zeros were probably lost on the way (the odd
files expect LEADING_ZEROS_LOST for a national id sent as the number 98765434, C27).
"""

from __future__ import annotations

import re
from typing import Final

from stdnum import luhn as stdnum_luhn
from stdnum.exceptions import ValidationError

from services.core.catalogue.fields import FieldError
from services.core.catalogue.normalise import ascii_digits

__all__ = ["bank_card", "iran_mobile", "iran_national_id", "luhn", "postal_code_ir"]

# Spaces, dashes and parentheses are how people group phone numbers; they carry no meaning.
_PHONE_PUNCTUATION: Final = str.maketrans("", "", " -()")
# +98 9xx..., 0098 9xx..., 98 9xx..., 09xx..., 9xx...: each captures the 10 digits from the '9'.
_IRAN_MOBILE: Final = re.compile(r"(?:\+98|0098|98|0)?(9[0-9]{9})")
_DIGITS: Final = re.compile(r"[0-9]+")


def _digits_only(text: str, length: int, what: str) -> str:
    value = ascii_digits(text)
    if len(value) != length or not _DIGITS.fullmatch(value):
        raise FieldError(f"{text!r} is not {what} ({length} digits)")
    return value


def iran_mobile(text: str) -> str:
    """An Iranian mobile number, stored as ``09#########``.

    Accepts ``09#########``, ``+989#########``, ``00989#########``, ``989#########`` and
    ``9#########`` (spaces, dashes and parentheses between digits ignored). The caller can
    warn when the result differs from the input, as the schema asks for the non-0 forms.
    """
    value = ascii_digits(text).translate(_PHONE_PUNCTUATION)
    match = _IRAN_MOBILE.fullmatch(value)
    if match is None:
        raise FieldError(
            f"{text!r} is not an Iranian mobile number (expected 09 and 9 more digits, "
            f"or +98 / 0098 followed by 9 and 9 more digits)"
        )
    return "0" + match.group(1)


def luhn(text: str) -> str:
    """Digits whose Luhn check digit is right (python-stdnum's implementation)."""
    value = ascii_digits(text)
    if not _DIGITS.fullmatch(value):
        raise FieldError(f"{text!r} is not a number for a Luhn check (digits only)")
    try:
        stdnum_luhn.validate(value)
    except ValidationError as e:
        raise FieldError(f"{text!r} fails the Luhn check (a digit is wrong or swapped)") from e
    return value


def bank_card(text: str) -> str:
    """A 16-digit bank card number with a valid Luhn check digit."""
    return luhn(_digits_only(text, 16, "a bank card number"))


def postal_code_ir(text: str) -> str:
    """An Iranian postal code: exactly 10 digits, leading zeros kept."""
    return _digits_only(text, 10, "an Iranian postal code")


def iran_national_id(text: str) -> str:
    """An Iranian national id (کد ملی): 10 digits, mod-11 check digit, not all digits equal.

    Check digit: r = sum(d_i * (10 - i) for the first nine digits) % 11; it must equal r when
    r < 2, else 11 - r.
    """
    value = ascii_digits(text)
    if _DIGITS.fullmatch(value) and len(value) in (8, 9):
        raise FieldError(
            f"{text!r} has {len(value)} digits; a national id has 10, so leading zeros were "
            f"probably lost (store it as text, not as a number)"
        )
    value = _digits_only(text, 10, "a national id")
    if len(set(value)) == 1:
        raise FieldError(f"{text!r} is not a national id (all digits are equal)")
    remainder = sum(int(digit) * (10 - i) for i, digit in enumerate(value[:9])) % 11
    check = remainder if remainder < 2 else 11 - remainder
    if int(value[9]) != check:
        raise FieldError(f"{text!r} is not a valid national id (the check digit is wrong)")
    return value
