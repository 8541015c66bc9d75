"""Cell normalisation (``services.core.catalogue.normalise``): the rules of the odd-files
expectations, with cells like those in C28 (Persian / Arabic digits) and Persian names.

Run this file directly (``python tests/core/test_normalise.py``) for a speed sanity check.
"""

from __future__ import annotations

import time

import pytest

from services.core.catalogue.normalise import (
    CellKind,
    ascii_digits,
    drop_thousands,
    fold_arabic_letters,
    normalise_cell,
    strip_invisible,
    tidy_zwnj,
)

ZWNJ = "\u200c"
LRM, RLM = "\u200e", "\u200f"
KINDS: tuple[CellKind, ...] = ("text", "identifier", "number", "date", "phone", "email")
INVISIBLE = [
    "\u200b",
    LRM,
    RLM,
    "\u061c",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\ufeff",
]


# --- strip_invisible -------------------------------------------------------------------------


@pytest.mark.parametrize("mark", INVISIBLE)
def test_each_invisible_mark_is_removed_anywhere(mark: str) -> None:
    assert strip_invisible(f"{mark}00{mark}12{mark}") == "0012"
    assert strip_invisible(f"{mark}علی{mark} رضایی{mark}") == "علی رضایی"


def test_direction_marks_around_an_id_go() -> None:
    assert strip_invisible(f"{LRM}0012345678{RLM}") == "0012345678"
    # an isolate pair as left by copying from an RTL page
    assert strip_invisible("\u20680012345678\u2069") == "0012345678"


@pytest.mark.parametrize("space", [" ", "\u00a0", "\u2003", "\u202f", "\u3000", "\t"])
def test_spaces_are_trimmed_at_both_ends_only(space: str) -> None:
    assert strip_invisible(f"{space}علی{space}رضایی{space}") == f"علی{space}رضایی"


def test_marks_go_before_trimming_so_hidden_spaces_are_trimmed() -> None:
    assert strip_invisible(f"\u00a0{LRM} 0012345678 {RLM}\u00a0") == "0012345678"


def test_inner_newlines_are_kept() -> None:
    assert strip_invisible("  سطر اول\nسطر دوم  ") == "سطر اول\nسطر دوم"


def test_zwnj_is_not_an_invisible_mark_to_remove() -> None:
    assert strip_invisible(f"می{ZWNJ}خواهم") == f"می{ZWNJ}خواهم"


# --- fold_arabic_letters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arabic", "persian"),
    [
        ("علي", "علی"),  # U+064A Arabic Yeh
        ("موسى", "موسی"),  # U+0649 Alef Maksura
        ("كامپيوتر", "کامپیوتر"),  # U+0643 Arabic Kaf and U+064A
        ("مهندسي كامپيوتر", "مهندسی کامپیوتر"),
    ],
)
def test_arabic_yeh_and_kaf_fold_to_persian(arabic: str, persian: str) -> None:
    assert fold_arabic_letters(arabic) == persian


def test_other_letters_are_left_alone() -> None:
    # teh marbuta, alef with hamza, Arabic-Indic digits: not part of the folding rule
    assert fold_arabic_letters("مدرسة أحمد ١٢") == "مدرسة أحمد ١٢"
    assert fold_arabic_letters("Ali Karimi") == "Ali Karimi"


# --- tidy_zwnj -------------------------------------------------------------------------------


def test_single_inner_zwnj_between_letters_is_kept() -> None:
    assert tidy_zwnj(f"می{ZWNJ}خواهم") == f"می{ZWNJ}خواهم"
    assert tidy_zwnj(f"کتاب{ZWNJ}ها") == f"کتاب{ZWNJ}ها"


def test_repeated_zwnj_collapses_to_one() -> None:
    assert tidy_zwnj(f"کتاب{ZWNJ * 3}ها") == f"کتاب{ZWNJ}ها"


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [
        (f"{ZWNJ}کتاب", "کتاب"),  # text start
        (f"کتاب{ZWNJ}", "کتاب"),  # text end
        (f"کتاب{ZWNJ} ها", "کتاب ها"),  # before a space
        (f"کتاب {ZWNJ}ها", "کتاب ها"),  # after a space
        (f"کتاب{ZWNJ}، دفتر", "کتاب، دفتر"),  # before punctuation: a word end
        (f"۲۰{ZWNJ}ساله", "۲۰ساله"),  # after a digit: not between letters
    ],
)
def test_zwnj_at_word_or_text_ends_is_dropped(raw: str, tidy: str) -> None:
    assert tidy_zwnj(raw) == tidy


def test_zwnj_after_a_combining_mark_stays_inside_the_word() -> None:
    # U+0654 hamza above belongs to the heh before it
    assert tidy_zwnj(f"خانه\u0654{ZWNJ}ها") == f"خانه\u0654{ZWNJ}ها"


# --- ascii_digits / drop_thousands -----------------------------------------------------------


def test_persian_and_arabic_indic_digits_map_to_ascii() -> None:
    assert ascii_digits("۰۱۲۳۴۵۶۷۸۹") == "0123456789"
    assert ascii_digits("٠١٢٣٤٥٦٧٨٩") == "0123456789"


def test_digits_of_every_other_script_map_to_ascii() -> None:
    assert ascii_digits("０９１２") == "0912"  # full-width, from East Asian keyboards
    assert ascii_digits("१२३") == "123"  # Devanagari
    assert ascii_digits("৪০১") == "401"  # Bengali
    assert ascii_digits("x²") == "x²"  # a superscript is not a decimal digit: left alone
    assert ascii_digits("علی۱") == "علی1"  # letters stay


def test_mixed_scripts_inside_one_value_map_digit_by_digit() -> None:
    assert ascii_digits("0912۰۰۰۰۳۸۳") == "09120000383"
    assert ascii_digits("۴۰۱١٠٠383") == "401100383"


def test_arabic_decimal_separator_becomes_a_point() -> None:
    assert ascii_digits("۱۷٫۵") == "17.5"


def test_ascii_digits_leaves_letters_and_thousands_separators() -> None:
    assert ascii_digits("کلاس ۱۰۱") == "کلاس 101"
    assert ascii_digits("۱۲٬۵۰۰") == "12٬500"


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("9,800,000", "9800000"),
        ("12٬500٬000", "12500000"),
        ("1,234.56", "1234.56"),
        ("-1,234", "-1234"),
        ("+999,999", "+999999"),
    ],
)
def test_grouped_thousands_are_dropped(raw: str, number: str) -> None:
    assert drop_thousands(raw) == number


@pytest.mark.parametrize(
    "raw",
    [
        "1,5",  # a decimal comma, never read as 15
        "12,34",
        "1,2345",
        "1234,567",
        ",123",
        "123,",
        "1,,234",
        "1,234٬567",  # mixed separators
        "1,234.5,6",
        "a,b",
        "NA",
    ],
)
def test_anything_but_a_well_grouped_number_is_left_unchanged(raw: str) -> None:
    assert drop_thousands(raw) == raw


# --- normalise_cell --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind", "value"),
    [
        # the cells of C28 rows 2-5
        ("۴۰۱۱۰۰۳۸۱", "identifier", "401100381"),
        ("۰۹۱۲۰۰۰۰۳۸۱", "phone", "09120000381"),
        ("۱۷٫۵", "number", "17.5"),
        ("۱۲٬۵۰۰٬۰۰۰", "number", "12500000"),
        ("١٨.٢٥", "number", "18.25"),
        ("٩,٨٠٠,٠٠٠", "number", "9800000"),
        ("۴۰۱100383", "identifier", "401100383"),
        ("0912۰۰۰۰۳۸۳", "phone", "09120000383"),
        ("۲۱", "number", "21"),
        # phone punctuation is left for the phone parser
        ("+۹۸ ۹۱۲-۰۰۰-۰۲۹۱", "phone", "+98 912-000-0291"),
        ("۱۴۰۲/۰۷/۱۵", "date", "1402/07/15"),
        ("ali۱۲@uni.example", "email", "ali12@uni.example"),
        (f"{LRM}۰۰۱۲۳۴۵۶۷۸{RLM}", "identifier", "0012345678"),
        (f"{LRM}0012345678{RLM}", "identifier", "0012345678"),
        # an invisible ZWNJ between digits of an id goes too
        (f"00123{ZWNJ}45678{ZWNJ}", "identifier", "0012345678"),
        ("9,800,000", "number", "9800000"),
        ("  1,5 ", "number", "1,5"),
    ],
)
def test_normalise_cell_by_kind(raw: str, kind: CellKind, value: str) -> None:
    assert normalise_cell(raw, kind) == value


def test_text_cells_fold_letters_and_tidy_zwnj_but_keep_their_digits() -> None:
    raw = f"\u00a0{RLM}مهندسي كامپيوتر{ZWNJ}{ZWNJ}ها ۱۰۱{ZWNJ} "
    assert normalise_cell(raw, "text") == f"مهندسی کامپیوتر{ZWNJ}ها ۱۰۱"


def test_end_zwnj_with_a_space_behind_it_leaves_no_space() -> None:
    assert normalise_cell(f"کتاب {ZWNJ}", "text") == "کتاب"


def test_letter_folding_can_be_turned_off() -> None:
    assert normalise_cell(" علي ", "text", fold_letters=False) == "علي"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("word", ["NA", "N/A", "NULL", "None", "nan", "-", "null", "#N/A"])
def test_words_are_never_made_empty(word: str, kind: CellKind) -> None:
    assert normalise_cell(f" {word} ", kind) == word
    assert normalise_cell(f"{LRM}{word}\u00a0", kind) == word


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("blank", ["", "   ", "\u00a0", f"{LRM}{RLM}", "\ufeff ", f" {ZWNJ} "])
def test_blank_and_invisible_only_cells_become_empty(blank: str, kind: CellKind) -> None:
    assert normalise_cell(blank, kind) == ""


@pytest.mark.parametrize("kind", KINDS)
def test_ascii_fast_path_returns_the_text_unchanged(kind: CellKind) -> None:
    for cell in ["401100291", "Ali Karimi", "0012345678", "2023-10-07", "a@b.example"]:
        out = normalise_cell(cell, kind)
        assert out == cell
        assert out is cell  # CPython's strip() returns the same object: no copy was made
    assert normalise_cell("  Ali Karimi \t", kind) == "Ali Karimi"


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown cell kind"):
        normalise_cell("x", "money")  # type: ignore[arg-type]


def _speed_report() -> None:
    """Print (not assert) the time to normalise 1M ASCII and 1M Persian cells."""
    ascii_cells = ["401100291", "Ali", "0012345678", "17.50", "Karimi"] * 200_000
    persian_cells = ["محمدرضا کریمی", "۰۰۱۲۳۴۵۶۷۹", "مهندسي كامپيوتر", f"کتاب{ZWNJ}ها", "۱۷٫۵"]
    kinds: list[CellKind] = ["text", "identifier", "text", "text", "number"]
    for label, cells in (("ASCII", ascii_cells), ("Persian", persian_cells * 200_000)):
        pairs = list(zip(cells, kinds * 200_000, strict=True))
        start = time.perf_counter()
        for cell, kind in pairs:
            normalise_cell(cell, kind)
        elapsed = time.perf_counter() - start
        per_cell = elapsed / len(pairs) * 1e9
        print(f"{label}: {len(pairs):,} cells in {elapsed:.2f}s ({per_cell:.0f} ns/cell)")


if __name__ == "__main__":
    _speed_report()
