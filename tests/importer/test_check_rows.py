"""The column-by-column check of a batch gives exactly what the row-by-row check gives.

``RowValidator.check`` is the reference: it converts one cell at a time. ``check_rows`` takes
whole columns through C-level fast paths and falls back to the converter for a doubtful
column. Random rows drawn from pools of awkward cells (Persian digits and letters, invisible
marks, ZWNJ, thousands separators, empty cells, bad values, ragged rows) must come out the same
both ways: the same values, the same rejections in the same order. No servers.
"""

from __future__ import annotations

import random
import re
from datetime import date, datetime

import pytest

from contracts.jobs import JobOptions, RejectedRow
from services.core.catalogue import Field, Model, get_model
from services.core.catalogue.columns import (
    ColumnParser,
    emails,
    iso_dates,
    iso_datetimes,
    national_ids,
)
from services.core.catalogue.fields import FieldError, parse_iran_national_id
from services.importer.csv_source import CellError, RecordBatch
from services.importer.errors import JobFailure
from services.importer.validate import RowValidator, ValidRow


def _nid(rng: random.Random) -> str:
    first = f"{rng.randrange(10**9):09d}"
    total = sum(int(d) * (10 - i) for i, d in enumerate(first)) % 11
    return first + str(total if total < 2 else 11 - total)


ODD_TEXT = [
    "",
    "  ",
    " padded ",
    "\u200eLRM\u200f",
    "علي",
    "كريم",
    "نیم\u200cفاصله",
    "\u200cلبه\u200c",
    "Zoë",
    "a\x00b",
    "x" * 151,
    "tab\there",
    "\x1fsep",
    "۱۲۳",
    "\ud800x",  # half of a UTF-16 pair, as a JSON file may escape it
]

POOLS: dict[str, list[str]] = {
    "username": ["u1", "ali.rezaei", "bad name", "", "u۱۲", "\u200eu9\u200e", "ok+tag@x"],
    "student_number": ["", "00123", "۰۰۱۲۳", "12a", "9" * 21, " 42 "],
    "national_id": ["", "0000000000", "1111111111", "123", "١٢٣٤٥٦٧٨٩٠", "0012345678"],
    "first_name": ["Ali", "سارا", *ODD_TEXT],
    "last_name": ["Rezaei", "محمدی", *ODD_TEXT],
    "email": ["A@B.CO", "a@b", "", "x y@z.io", "ÜBER@ex.de", "me@uni.example"],
    "phone": ["", "09121234567", "+98 912 123 4567", "(021) 555-1234", "12", "۰۹۱۲۱۲۳۴۵۶۷"],
    "birth_date": [
        "",
        "2001-02-03",
        "2001-02-30",
        "1402/07/15",
        "1380-07-15",
        "۱۴۰۲-۰۷-۱۵",
        "2001-2-3",
        "44000",
        "20010203",
    ],
    "role": ["student", "staff", "faculty", "Student", "", "admin"],
    "faculty": ["", "Engineering", "علوم", "  Science  ", "y" * 101],
    "is_active": ["", "true", "False", "t", "yes", "بله", "maybe", "1"],
    "date_joined": [
        "",
        "2024-03-04T05:06:07",
        "2024-03-04T05:06:07+03:30",
        "2024-03-04 05:06",
        "2024-03-04T05:06:07Z",
        "2024-02-30T00:00:00Z",
        "1402/07/15 10:00",
        "2024-03-10T02:30:00",
        "nonsense",
    ],
}
HEADER = list(POOLS)
GOOD = {
    "student_number": "00123",
    "first_name": "Ali",
    "last_name": "محمدی",
    "email": "Me@Uni.Example",
    "phone": "09121234567",
    "birth_date": "2001-02-03",
    "role": "staff",
    "faculty": "Engineering",
    "is_active": "true",
    "date_joined": "2024-03-04T05:06:07+03:30",
}


def _reference(
    validator: RowValidator, batch: RecordBatch
) -> tuple[list[tuple[object, ...]], list[RejectedRow]]:
    valid: list[tuple[object, ...]] = []
    rejected: list[RejectedRow] = []
    for i, (line, cells) in enumerate(zip(batch.lines, batch.rows, strict=True)):
        checked = validator.check(line, cells, batch.errors.get(i, ()))
        if isinstance(checked, ValidRow):
            valid.append((line, *checked.values))
        else:
            rejected.extend(checked)
    return valid, rejected


def _draw(rng: random.Random, bad_share: float, *, ragged: bool = True) -> list[str]:
    cells = []
    for name, pool in POOLS.items():
        if rng.random() < bad_share:
            cells.append(rng.choice(pool))
        elif name == "national_id":
            cells.append(_nid(rng))
        elif name == "username":
            cells.append(f"u{rng.randrange(10**6)}")
        else:
            cells.append(GOOD[name])
    roll = rng.random() if ragged else 1.0
    if roll < 0.02:
        cells = cells[:-2]  # ragged: too short
    elif roll < 0.04:
        cells = [*cells, "", " "]  # a stray trailing delimiter: harmless
    elif roll < 0.05:
        cells = [*cells, "extra"]
    return cells


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("calendar", ["gregorian", "auto", "jalali"])
def test_check_rows_matches_the_row_by_row_check(seed: int, calendar: str) -> None:
    rng = random.Random(seed)
    options = JobOptions(calendar=calendar, fold_arabic_letters=seed % 2 == 0)  # type: ignore[arg-type]
    validator = RowValidator(get_model("users.User"), HEADER, {}, options)
    bad_share = [0.0, 0.01, 0.1, 0.5][seed % 4]
    rows = [_draw(rng, bad_share) for _ in range(300)]
    lines = list(range(2, 2 + len(rows)))
    errors: dict[int, tuple[CellError, ...]] = {}
    if seed % 3 == 0:
        errors[5] = (CellError("faculty", "#REF!", "the cell holds an Excel error"),)
    batch = RecordBatch(lines, rows, errors)
    expected_valid, expected_rejected = _reference(validator, batch)
    checked = validator.check_rows(batch)
    if bad_share < 0.05 and calendar != "jalali":  # the good dates are Gregorian
        assert len(expected_valid) > len(rows) // 2  # the fast paths were exercised
    assert checked.valid == expected_valid
    assert checked.rejected == expected_rejected
    assert checked.rejected_lines == {r.row for r in expected_rejected}


def test_the_stepped_check_pauses_once_per_column_and_agrees_with_check_rows() -> None:
    # the runner checks a piece in steps while a chunk is being written, answering the
    # database between two columns; the steps must give exactly what check_rows gives
    validator = RowValidator(get_model("users.User"), HEADER, {}, JobOptions())
    rng = random.Random(11)
    rows = [_draw(rng, 0.1) for _ in range(200)]
    batch = RecordBatch(list(range(2, 2 + len(rows))), rows)
    steps = validator.checking(batch)
    pauses = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            stepped = done.value
            break
        pauses += 1
    assert pauses == len(validator.fields) == len(HEADER)
    expected = validator.check_rows(batch)
    assert stepped.valid == expected.valid
    assert stepped.rejected == expected.rejected
    assert stepped.rejected


def test_a_clean_batch_keeps_typed_values() -> None:
    validator = RowValidator(get_model("users.User"), HEADER, {}, JobOptions())
    rng = random.Random(7)
    rows = [_draw(rng, 0.0, ragged=False) for _ in range(50)]
    checked = validator.check_rows(RecordBatch(list(range(2, 52)), rows))
    assert not checked.rejected
    first = checked.valid[0]
    assert first[0] == 2
    assert isinstance(first[HEADER.index("birth_date") + 1], date)
    assert isinstance(first[HEADER.index("date_joined") + 1], datetime)
    assert first[HEADER.index("is_active") + 1] is True
    assert first[HEADER.index("email") + 1] == "me@uni.example"


def test_whole_column_national_ids_agree_with_the_cell_parser() -> None:
    rng = random.Random(3)
    candidates = [f"{rng.randrange(10**10):010d}" for _ in range(20_000)]
    accepted = []
    for text in candidates:
        try:
            accepted.append(parse_iran_national_id(text))
        except FieldError:
            with pytest.raises(FieldError):
                national_ids([text])
    assert len(accepted) > 1000
    assert national_ids(accepted) == accepted
    with pytest.raises(FieldError):
        national_ids([*accepted[:10], "1111111111"])  # a right check digit, but not an id


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")


@pytest.mark.parametrize("digits", [FULL_WIDTH, DEVANAGARI], ids=["full-width", "devanagari"])
def test_digits_of_other_scripts_are_stored_as_ascii(digits: dict[int, int]) -> None:
    """Full-width or Devanagari digits (which Python's ``int`` reads but PostgreSQL and the
    check-digit rules do not) become ASCII, whole column or cell by cell, never stored as
    they came: before, such a national id was refused as "not 10 digits"."""
    validator = RowValidator(get_model("users.User"), HEADER, {}, JobOptions())
    rng = random.Random(11)
    plain = [_draw(rng, 0.0, ragged=False) for _ in range(300)]
    numbered = ("national_id", "student_number", "phone", "birth_date")
    positions = [HEADER.index(name) for name in numbered]
    rows = [
        [cell.translate(digits) if i in positions else cell for i, cell in enumerate(cells)]
        for cells in plain
    ]
    lines = list(range(2, 302))
    expected = validator.check_rows(RecordBatch(lines, plain))
    for batch in (RecordBatch(lines, rows), RecordBatch(lines[:1], rows[:1])):
        checked = validator.check_rows(batch)
        assert not checked.rejected, checked.rejected[:3]
        assert checked.valid == expected.valid[: len(checked.valid)]


# an enabled table's date and time columns, as reflection describes them: parsed with str,
# read by the calendar-aware parsers because of their kind
ENABLED = Model(
    name="public.trial_types",
    schema="public",
    table="trial_types",
    fields=(
        Field(name="code", sql_type="varchar(20)", required=True, kind="identifier"),
        Field(name="t_date", sql_type="date", kind="date"),
        Field(name="t_tstz", sql_type="timestamp with time zone", kind="datetime"),
    ),
    natural_key="code",
)


@pytest.mark.parametrize("calendar", ["gregorian", "auto", "jalali"])
def test_an_enabled_tables_dates_are_parsed_column_by_column_too(calendar: str) -> None:
    """Before, the column check took such a column's cells as they were (its parser is str),
    so COPY stored 1402/07/15 as a Gregorian date and a naive time as UTC, whatever the job's
    calendar and zone said, while one awkward cell in the batch gave the right values."""
    options = JobOptions(calendar=calendar, time_zone="Asia/Tehran")  # type: ignore[arg-type]
    validator = RowValidator(ENABLED, ["code", "t_date", "t_tstz"], {}, options)
    rows = [
        ["k0", "1402/07/15", "2024-01-01 10:00:00"],
        ["k1", "1402-07-16", "2024-01-01T10:00:00+03:30"],
        ["k2", "2023-10-08", ""],
    ]
    batch = RecordBatch([2, 3, 4], rows)
    expected_valid, expected_rejected = _reference(validator, batch)
    checked = validator.check_rows(batch)
    assert checked.valid == expected_valid
    assert checked.rejected == expected_rejected
    for row in checked.valid:
        assert row[2] is None or isinstance(row[2], date)
        assert row[3] is None or isinstance(row[3], datetime)


@pytest.mark.parametrize("sql_type", ["time without time zone", "interval", "bytea", "text[]",
                                      "timestamp(3) without time zone"])  # fmt: skip
def test_a_column_type_imports_cannot_load_is_named_before_reading(sql_type: str) -> None:
    model = Model(
        name="public.odd",
        schema="public",
        table="odd",
        fields=(Field(name="code", sql_type="text", required=True), Field("t", sql_type)),
        natural_key="code",
    )
    with pytest.raises(JobFailure, match=f"column 't' has type {re.escape(sql_type)}"):
        RowValidator(model, ["code", "t"], {}, JobOptions())
    assert RowValidator(model, ["code"], {}, JobOptions()).columns == ["code"]


@pytest.mark.parametrize(
    ("cell", "value"),
    [("بله", True), ("آری", True), ("۱", True), ("١", True), ("خیر", False), ("نه", False),
     ("۰", False), ("٠", False), ("Yes", True), ("0", False)],
)  # fmt: skip
def test_persian_yes_no_words_and_digits(cell: str, value: bool) -> None:
    """۱ and نه were refused while 1 and بله were read."""
    validator = RowValidator(get_model("users.User"), HEADER, {}, JobOptions())
    rng = random.Random(5)
    rows = [_draw(rng, 0.0, ragged=False) for _ in range(3)]
    for row in rows:
        row[HEADER.index("is_active")] = cell
    checked = validator.check_rows(RecordBatch([2, 3, 4], rows))
    assert checked.rejected == []
    assert [row[HEADER.index("is_active") + 1] for row in checked.valid] == [value] * 3


@pytest.mark.timeout(20)  # a hang guard: a column-wide regex once backtracked exponentially
@pytest.mark.parametrize(
    ("parse", "good"),
    [
        (emails, "first.middle.last@mail.dept.uni.example.ac.ir"),
        (iso_dates, "2001-02-03"),
        (iso_datetimes, "2024-03-04T05:06:07.123456+03:30"),
    ],
)
def test_a_long_column_with_a_bad_last_cell_fails_at_once(parse: ColumnParser, good: str) -> None:
    with pytest.raises(FieldError):
        parse([good] * 250 + [good + "@"])
    assert len(parse([good] * 250)) == 250
