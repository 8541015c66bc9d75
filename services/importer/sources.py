"""Pick the reader for a job's format; every reader yields the same ``Record``s."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Protocol

from contracts.jobs import JobOptions
from services.core.catalogue import Model
from services.importer.csv_source import CsvSource, Record, RecordBatch
from services.importer.errors import JobFailure
from services.importer.json_source import JsonLinesSource, JsonSource
from services.importer.nested import mapped_header, nested_layout
from services.importer.xlsx_source import XlsxSource

__all__ = ["Source", "batch_reader", "open_source"]


class Source(Protocol):
    bytes_total: int

    @property
    def bytes_read(self) -> int: ...

    def header(self) -> list[str]: ...

    def records(self) -> Iterator[Record]: ...

    def close(self) -> None: ...


def open_source(fmt: str, path: Path, model: Model, options: JobOptions) -> Source:
    """Raises ``JobFailure`` for a format the importer cannot read."""
    if fmt == "csv":
        return CsvSource(path, encoding=options.encoding, delimiter=options.delimiter)
    # every field once: a mapped field under its name in the file, the others under theirs
    known = mapped_header(model, options.field_mapping)
    # columns (by their name in the file) whose field holds JSON take nested values whole
    holds_json = {f.name for f in model.fields if f.sql_type.lower() in ("json", "jsonb")}
    json_columns = [*holds_json, *(k for k, v in options.field_mapping.items() if v in holds_json)]
    nested = nested_layout(model, options)  # dotted names reach into nested objects
    if nested is not None:
        known = [*known, *(name for name in options.children if name not in known)]
    if fmt == "json":
        return JsonSource(path, known_columns=known, json_columns=json_columns, nested=nested)
    if fmt == "jsonl":
        return JsonLinesSource(path, known_columns=known, json_columns=json_columns, nested=nested)
    if fmt == "xlsx":
        return XlsxSource(path, sheet=options.sheet, header_row=options.header_row)
    raise JobFailure("unsupported_format", f"format {fmt!r} cannot be imported")


def batch_reader(source: Source) -> Callable[[int], RecordBatch | None]:
    """``read(count)``: the next records as one batch, ``None`` at the end. The CSV reader
    makes its batches in C; the other formats group their records."""
    if isinstance(source, CsvSource | XlsxSource):
        return source.read
    records = source.records()

    def read(count: int) -> RecordBatch | None:
        batch = list(islice(records, count))
        return RecordBatch.of(batch) if batch else None

    return read
