"""Cell normalisation applied before a field parser sees the text.

The rules are the "Normalisation applied before validation" paragraph of the odd-files
expectations: invisible direction marks go, Arabic letter forms fold to Persian ones, ZWNJ is
tidied in text, and Persian / Arabic-Indic digits become ASCII in identifier, number, phone and
date columns (PostgreSQL casts only accept ASCII digits, while Python's ``int`` and ``\\d`` accept
all of them, so skipping this step stores identifiers that later fail to match).

These functions run on every cell of files with millions of rows, so each one:

* returns ASCII text at once (nothing to fold or map there);
* checks with one precompiled character class whether there is anything to change, because
  ``str.translate`` with a mapping costs a dictionary lookup per character even when nothing
  matches, while a failed regex search over a character class stays in C;
* does the actual mapping with a ``str.translate`` table built once at import.

No word is ever turned into an empty value here: "NA", "NULL", "None", "nan" and "-" are data.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, Literal, get_args

__all__ = [
    "ZWNJ",
    "CellKind",
    "ascii_digits",
    "cell_table",
    "drop_thousands",
    "fold_arabic_letters",
    "normalise_cell",
    "strip_invisible",
    "tidy_zwnj",
]

CellKind = Literal["text", "identifier", "number", "date", "phone", "email"]
_KINDS: Final = frozenset(get_args(CellKind))

ZWNJ: Final = "\u200c"

# Zero-width space, LRM, RLM, Arabic letter mark, the embedding/override controls, the isolate
# controls and the BOM / zero-width no-break space: spreadsheets and copy-paste from RTL text
# leave them around IDs, where they are invisible but make "0012345678" not match itself.
_INVISIBLE: Final = (
    "\u200b\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)
_INVISIBLE_TABLE: Final = str.maketrans("", "", _INVISIBLE)
_HAS_INVISIBLE: Final = re.compile(f"[{_INVISIBLE}]")

# Arabic Yeh, Alef Maksura and Kaf look like (or are typed instead of) Persian Yeh and Keheh;
# without folding, "علي" and "علی" are different names and department look-ups miss.
_ARABIC_LETTERS: Final = {0x064A: 0x06CC, 0x0649: 0x06CC, 0x0643: 0x06A9}
_ARABIC_LETTER_TABLE: Final = str.maketrans(_ARABIC_LETTERS)
_HAS_ARABIC_LETTER: Final = re.compile("[\u064a\u0649\u0643]")

# Extended Arabic-Indic (Persian) digits, Arabic-Indic digits, and the Arabic decimal separator.
_DIGITS: Final = {
    **{0x06F0 + i: 0x30 + i for i in range(10)},
    **{0x0660 + i: 0x30 + i for i in range(10)},
    0x066B: ord("."),
}
_DIGIT_TABLE: Final = str.maketrans(_DIGITS)
_HAS_NON_ASCII_DIGIT: Final = re.compile("[\u06f0-\u06f9\u0660-\u0669\u066b]")
# any other decimal digit (Unicode category Nd) that is not ASCII
_OTHER_DIGIT: Final = re.compile(r"(?![0-9])\d")

ARABIC_THOUSANDS: Final = "\u066c"
# A grouped number: 1-3 leading digits, then groups of exactly three after the SAME separator,
# then an optional decimal part. Anything else (e.g. "1,5", "12,34", "1,234٬567") is left for the
# number parser to refuse, so a decimal comma is never silently read as a thousands separator.
_GROUPED_NUMBER: Final = re.compile(
    r"[+-]?[0-9]{1,3}([,\u066c])[0-9]{3}(?:\1[0-9]{3})*(?:\.[0-9]+)?"
)
_ZWNJ_RUN: Final = re.compile(f"{ZWNJ}+")


def strip_invisible(text: str) -> str:
    """Remove invisible direction/format marks anywhere, then trim whitespace at both ends.

    Trimming uses ``str.strip()``, which covers U+00A0 and the other Unicode space separators
    (U+2000-U+200A, U+202F, U+3000, ...); marks are removed first so spaces they hid are trimmed
    too. Inner whitespace, including newlines in notes, is kept.
    """
    if text.isascii() or not _HAS_INVISIBLE.search(text):
        return text.strip()
    return text.translate(_INVISIBLE_TABLE).strip()


def fold_arabic_letters(text: str) -> str:
    """Fold Arabic ي/ى to Persian ی and Arabic ك to Persian ک; nothing else changes."""
    if text.isascii() or not _HAS_ARABIC_LETTER.search(text):
        return text
    return text.translate(_ARABIC_LETTER_TABLE)


def _is_word_char(char: str) -> bool:
    # combining marks (harakat, hamza above) belong to the letter before them
    return char.isalpha() or unicodedata.category(char).startswith("M")


def _keep_zwnj(match: re.Match[str]) -> str:
    text = match.string
    start, end = match.start(), match.end()
    inside_word = start > 0 and end < len(text)
    if inside_word and _is_word_char(text[start - 1]) and _is_word_char(text[end]):
        return ZWNJ
    return ""


def tidy_zwnj(text: str) -> str:
    """Keep one ZWNJ between two letters (نیم‌فاصله); drop it at word or text ends and by spaces.

    A run of ZWNJs collapses to one. A ZWNJ next to anything that is not a letter (space, digit,
    punctuation, text start or end) has no shaping effect, so it is removed.
    """
    if ZWNJ not in text:
        return text
    return _ZWNJ_RUN.sub(_keep_zwnj, text)


def _ascii_digit(match: re.Match[str]) -> str:
    return chr(0x30 + unicodedata.decimal(match.group()))


def ascii_digits(text: str) -> str:
    """Map Persian (U+06F0-06F9) and Arabic-Indic (U+0660-0669) digits to ASCII, U+066B to '.',
    and so every other script's decimal digits (full-width ０-９ from East Asian keyboards,
    Devanagari, ...), which Python's ``int`` would take but PostgreSQL and the check-digit
    rules would not.

    Mixed scripts inside one value ("0912۰۰۰۰۳۸۳") are allowed and map digit by digit.
    """
    if text.isascii():
        return text
    if _HAS_NON_ASCII_DIGIT.search(text):
        text = text.translate(_DIGIT_TABLE)
    if _OTHER_DIGIT.search(text):
        text = _OTHER_DIGIT.sub(_ascii_digit, text)
    return text


def drop_thousands(text: str) -> str:
    """Remove ',' or U+066C thousands separators, but only from a well-grouped number.

    The rule: the whole text must be an optional sign, 1-3 ASCII digits, one or more groups of
    exactly three digits each preceded by the same separator (all ',' or all U+066C), and an
    optional '.' decimal part. Then every separator is removed ("9,800,000" -> "9800000",
    "12٬500٬000.5" -> "12500000.5"). Otherwise the text is returned unchanged so the number
    parser can refuse it ("1,5" stays "1,5"; it is never read as 15). Expects ASCII digits, so
    call ``ascii_digits`` first (``normalise_cell`` does).
    """
    if "," not in text and ARABIC_THOUSANDS not in text:
        return text
    match = _GROUPED_NUMBER.fullmatch(text)
    if match is None:
        return text
    return text.replace(match.group(1), "")


def cell_table(kind: CellKind, *, fold_letters: bool = True) -> dict[int, int | None]:
    """One ``str.translate`` table doing the character mapping of ``normalise_cell`` for
    ``kind``: invisible marks go, and letters fold (text) or digits map (other kinds).
    Trimming, ZWNJ tidying and thousands separators are left to the caller."""
    table: dict[int, int | None] = dict.fromkeys(map(ord, _INVISIBLE))
    if kind == "text":
        if fold_letters:
            table.update(_ARABIC_LETTERS)
    else:
        table.update(_DIGITS)
    return table


def normalise_cell(text: str, kind: CellKind, *, fold_letters: bool = True) -> str:
    """Normalise one cell's text for a column of the given kind; see the module docstring.

    * every kind: ``strip_invisible``;
    * every kind: ``tidy_zwnj`` (in an identifier a ZWNJ is as invisible as an LRM, and one
      between digits is not between letters, so it goes);
    * ``text``: ``fold_arabic_letters`` unless ``fold_letters`` is false (e.g. Arabic text);
    * ``identifier``, ``date``, ``phone``, ``email``: ``ascii_digits`` (phone punctuation such as
      '+', spaces and dashes is left for the phone parser);
    * ``number``: ``ascii_digits`` then ``drop_thousands``.

    The result may be empty (the caller treats that as NULL); a word is never made empty.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown cell kind {kind!r}; expected one of {sorted(_KINDS)}")
    if text.isascii():
        # the fast path for most cells: nothing to remove, fold or map
        stripped = text.strip()
        return drop_thousands(stripped) if kind == "number" else stripped
    cleaned = strip_invisible(text)
    if ZWNJ in cleaned:
        # strip again: a space hidden behind an end ZWNJ ("کتاب \u200c") is an end space too
        cleaned = tidy_zwnj(cleaned).strip()
    if kind == "text":
        return fold_arabic_letters(cleaned) if fold_letters else cleaned
    cleaned = ascii_digits(cleaned)
    if kind == "number":
        return drop_thousands(cleaned)
    return cleaned
