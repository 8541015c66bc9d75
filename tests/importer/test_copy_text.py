"""Checked rows written as CSV text for COPY load exactly the values asyncpg's binary COPY
loads: random batches of awkward cells (quotes, delimiters, line breaks, Persian text, empty
cells, every type of the users model), read through the CSV reader or given as cells, go into
two staging tables of a real PostgreSQL, one each way, and the tables must match."""

from __future__ import annotations

import random
from pathlib import Path

import asyncpg
import msgspec
import pytest

from contracts.jobs import JobOptions
from services.core.catalogue import Field, get_model
from services.gateway.schemas import JobOptionsBody
from services.importer.copy_text import CopyText, renderer
from services.importer.csv_source import CsvSource, RecordBatch
from services.importer.errors import JobFailure
from services.importer.loader import quote_ident
from services.importer.validate import CheckedRows, RowValidator
from tests.importer.test_check_rows import HEADER, _draw, _nid

MODEL = get_model("users.User")
AWKWARD = ['say "hi"', "a,b", "semi;colon", "pipe|bar", '""', "two\nlines", "tab\there", "O'Neil"]


async def _tables(conn: asyncpg.Connection, fields: list[Field]) -> None:
    cols = ", ".join(f"{quote_ident(f.name)} {f.sql_type}" for f in fields)
    for name in ("by_binary", "by_text"):
        await conn.execute(f"CREATE TEMP TABLE {name} (_row bigint, {cols})")


async def _same_both_ways(
    conn: asyncpg.Connection, validator: RowValidator, writer: CopyText, checked: CheckedRows
) -> int:
    """Load the batch both ways and compare; the number of rows loaded."""
    assert checked.copy_text is not None
    columns = [f.name for f in validator.fields]
    await conn.execute("TRUNCATE by_binary, by_text")
    await conn.copy_records_to_table("by_binary", records=checked.valid, columns=["_row", *columns])
    data = writer.chunk([checked.copy_text])
    if writer.numbered:
        await conn.copy_to_table(
            "by_text",
            source=memoryview(data.data),
            columns=["_row", *data.columns],
            format="csv",
            delimiter=data.delimiter,
        )
        binary = await conn.fetch("SELECT * FROM by_binary ORDER BY _row")
        text = await conn.fetch("SELECT * FROM by_text ORDER BY _row")
        assert [tuple(r) for r in text] == [tuple(r) for r in binary]
    else:  # the text has no line numbers: compare the rows as a whole
        await conn.execute("ALTER TABLE by_text DROP COLUMN IF EXISTS _row")
        await conn.copy_to_table(
            "by_text",
            source=memoryview(data.data),
            columns=list(data.columns),
            format="csv",
            delimiter=data.delimiter,
        )
        names = ", ".join(quote_ident(c) for c in columns)
        binary = await conn.fetch(f"SELECT {names} FROM by_binary")
        text = await conn.fetch(f"SELECT {names} FROM by_text")
        assert sorted(map(repr, map(tuple, text))) == sorted(map(repr, map(tuple, binary)))
    return len(binary)


def _awkward_rows(
    rng: random.Random, count: int, awkward: float, *, jalali: bool = False
) -> list[list[str]]:
    rows = []
    for _ in range(count):
        cells = _draw(rng, 0.05, ragged=False)
        if jalali:  # the good dates of the pools are Gregorian
            cells[HEADER.index("birth_date")] = "1380-07-15"
            cells[HEADER.index("date_joined")] = rng.choice(["1402/07/15 10:00", ""])
        for name in ("first_name", "last_name", "faculty"):
            if rng.random() < awkward:
                cells[HEADER.index(name)] = rng.choice(AWKWARD)
        rows.append(cells)
    return rows


@pytest.mark.parametrize("seed", range(9))
@pytest.mark.parametrize("numbered", [True, False], ids=["numbered", "plain"])
async def test_text_loads_what_binary_loads(
    conn: asyncpg.Connection, seed: int, numbered: bool
) -> None:
    rng = random.Random(seed)
    calendar = ["gregorian", "auto", "jalali"][seed % 3]
    options = JobOptions(calendar=calendar, time_zone="Asia/Tehran")  # type: ignore[arg-type]
    validator = RowValidator(MODEL, HEADER, {}, options)
    writer = validator.write_copy_text([",", ";", "\t", "-"][seed % 4], numbered=numbered)
    await _tables(conn, validator.fields)
    rows = _awkward_rows(rng, 300, [0.0, 0.05, 0.5][seed % 3], jalali=calendar == "jalali")
    checked = validator.check_rows(RecordBatch(list(range(2, 302)), rows))
    assert checked.rejected  # some bad cells: their rows are left out of the text
    assert await _same_both_ways(conn, validator, writer, checked) == len(checked.valid) > 150


@pytest.mark.parametrize("delimiter", [",", ";", "|"])
@pytest.mark.parametrize("extra_column", [False, True])
async def test_batches_read_from_a_file_load_the_same_both_ways(
    conn: asyncpg.Connection, tmp_path: Path, delimiter: str, extra_column: bool
) -> None:
    """Quote-free batches (split by the reader in C, often their own text) and, after the
    first quote, batches the csv module reads."""
    rng = random.Random(len(delimiter) + extra_column)
    header = [*HEADER, "notes"] if extra_column else HEADER
    lines = [delimiter.join(header)]
    for i in range(1_200):
        cells = _draw(rng, 0.02, ragged=False)
        if extra_column:
            cells.append("n" if i % 3 else "")
        lines.append(delimiter.join(c.replace(delimiter, "").replace('"', "") for c in cells))
    lines.append(delimiter.join(f'"{c}"' if c else c for c in _draw(rng, 0.0, ragged=False)))
    lines += [delimiter.join(_draw(rng, 0.02, ragged=False)) for _ in range(300)]
    path = tmp_path / "people.csv"
    # a file holds no lone surrogate (UTF-8 cannot carry one): "?" stands in for it
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="replace")
    source = CsvSource(path, delimiter=delimiter)
    validator = RowValidator(MODEL, source.header(), {}, JobOptions())
    writer = validator.write_copy_text(delimiter, numbered=True)
    await _tables(conn, validator.fields)
    as_read = loaded = 0
    while (batch := source.read(250)) is not None:
        checked = validator.check_rows(batch)
        as_read += checked.copy_text == batch.text
        loaded += await _same_both_ways(conn, validator, writer, checked)
    source.close()
    assert loaded > 1_000
    if not extra_column:
        assert as_read == 0  # a typed column (a date-time, a yes/no) is written anew


async def test_a_batch_of_text_cells_as_read_is_its_own_text(conn: asyncpg.Connection) -> None:
    rng = random.Random(5)
    fields = ["username", "national_id", "first_name", "last_name", "email", "role", "faculty"]
    cells = [
        [f"u{i}", _nid(rng), "Ali", "محمدی", f"u{i}@uni.example", "student", "Law" * (i % 2)]
        for i in range(10)
    ]
    body = "\n".join(",".join(row) for row in cells)
    columns = [list(column) for column in zip(*cells, strict=True)]
    batch = RecordBatch(list(range(2, 12)), columns=columns, text=body)
    validator = RowValidator(MODEL, fields, {}, JobOptions())
    writer = validator.write_copy_text(",", numbered=False)
    checked = validator.check_rows(batch)
    assert checked.copy_text is body
    await _tables(conn, validator.fields)
    assert await _same_both_ways(conn, validator, writer, checked) == 10


def test_types_without_a_text_form_keep_the_binary_path() -> None:
    assert renderer("jsonb") is None
    assert renderer("integer[]") is None
    assert renderer("timestamp without time zone") is None
    assert renderer("character varying(150)") is not None


async def test_a_date_time_sixteen_hours_or_more_off_utc_loads_its_instant(
    conn: asyncpg.Connection,
) -> None:
    """PostgreSQL reads offsets below 16 hours only; Python takes up to 23:59. Before, such
    a cell failed the COPY of its chunk, and with it an upsert or a dry run."""
    rng = random.Random(3)
    validator = RowValidator(MODEL, HEADER, {}, JobOptions())
    await _tables(conn, validator.fields)
    rows = _awkward_rows(rng, 20, 0.0)
    column = HEADER.index("date_joined")
    offsets = ["+16:00", "-23:59", "+15:59", "+03:30"]
    for i, row in enumerate(rows):
        row[column] = f"2024-01-01T10:00:00{offsets[i % 4]}"
    for numbered in (True, False):
        writer = validator.write_copy_text(",", numbered=numbered)
        checked = validator.check_rows(RecordBatch(list(range(2, 22)), rows))
        assert await _same_both_ways(conn, validator, writer, checked) == len(checked.valid) > 10


def test_a_lone_backslash_dot_is_quoted() -> None:
    """An unquoted line of just \\. ends COPY's data on PostgreSQL before 18: the rows after
    it were lost without a word from a file of one column."""
    model = get_model("users.User")
    fields = [f for f in model.fields if f.name == "username"]
    writer = CopyText(fields, [0], 1, ",", numbered=False)
    cells = [["a", "\\.", "b"]]
    text = writer.text([2, 3, 4], cells, cells, [None], plain=None)
    assert text == '"a"\n"\\."\n"b"'


def test_a_delimiter_must_be_one_plain_character(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("username\nu1\n", encoding="utf-8")
    for bad in ("::", '"', "\n", ""):
        with pytest.raises(JobFailure, match="delimiter"):
            CsvSource(path, delimiter=bad)
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert({"delimiter": bad}, JobOptionsBody)
    assert msgspec.convert({"delimiter": ":"}, JobOptionsBody).delimiter == ":"
