"""A chunk's rows kept by column read the same as the row tuples they stand for."""

from __future__ import annotations

from datetime import date

from services.importer.rows import ValidRows, column_of


def test_rows_kept_by_column_and_by_row_read_as_one_sequence() -> None:
    rows = ValidRows()
    rows.add_columns([[2, 3], ["a", "b"], [date(2001, 1, 1), None]])
    rows.add_rows([(5, "c", date(2002, 2, 2))])
    rows.add_columns([[], [], []])  # an empty part: nothing
    rows.add_columns([[7], ["d"], [None]])
    expected = [
        (2, "a", date(2001, 1, 1)),
        (3, "b", None),
        (5, "c", date(2002, 2, 2)),
        (7, "d", None),
    ]
    assert len(rows) == 4
    assert column_of(rows, 1) == ["a", "b", "c", "d"]
    assert column_of(rows, 0) == [2, 3, 5, 7]
    assert list(rows) == expected
    assert rows[2] == expected[2]
    assert rows[-1] == expected[-1]
    assert list(rows[1:3]) == expected[1:3]
    assert None in column_of(rows, 2)


def test_rows_added_after_reading_are_seen() -> None:
    rows = ValidRows()
    rows.add_columns([[2], ["a"]])
    assert list(rows) == [(2, "a")]
    rows.add_columns([[3], ["b"]])
    assert list(rows) == [(2, "a"), (3, "b")]
    assert len(rows) == 2


def test_column_of_plain_row_tuples() -> None:
    assert column_of([(2, "a"), (3, "b")], 1) == ["a", "b"]
