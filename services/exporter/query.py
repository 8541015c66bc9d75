"""The SELECT of an export, built only from catalogue names; values go as parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.jobs import ExportFilter
from services.core.catalogue import Model
from services.exporter.errors import ExportFailure

__all__ = ["ExportQuery", "build_query"]

_OPS = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class ExportQuery:
    columns: list[str]
    sql: str
    count_sql: str
    args: list[object]
    # the same rows shaped for PostgreSQL's own CSV writer (COPY): formulas neutralised,
    # booleans and times spelled as the other writers spell them
    csv_sql: str = ""


_TEXT_TYPES = ("text", "varchar", "character", "char")
# a text cell starting like a formula (= + - @ tab CR) gets an apostrophe, as the Python
# writer does; tested on the first character's code, which costs PostgreSQL a quarter of a
# regex per cell, and most text starts above '@' (64), so one comparison settles it
_FORMULA_SQL = (
    "CASE WHEN ascii({c}) > 64 THEN {c}::text"
    " WHEN ascii({c}) IN (9, 13, 43, 45, 61, 64) THEN '''' || {c}"
    " ELSE {c}::text END AS {c}"
)
_ISO_UTC = '\'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\''


def _csv_column(model: Model, name: str, escape_formulas: bool) -> str:
    col = _q(name)
    sql_type = model.field(name).sql_type.lower()
    if sql_type.startswith(_TEXT_TYPES):
        return _FORMULA_SQL.format(c=col) if escape_formulas else col
    if sql_type == "boolean":
        return f"CASE WHEN {col} THEN 'true' WHEN NOT {col} THEN 'false' END AS {col}"
    if sql_type.startswith("timestamp"):
        return f"to_char({col} AT TIME ZONE 'UTC', {_ISO_UTC}) AS {col}"
    return col


def _field(model: Model, name: str, what: str) -> str:
    if name not in model.field_names:
        raise ExportFailure(
            "unknown_field",
            f"{what} names unknown field {name!r} of "
            f"{model.name} (fields: {', '.join(model.field_names)})",
        )
    return name


def _condition(model: Model, f: ExportFilter, args: list[object]) -> str:
    column = _q(_field(model, f.field, "a filter"))
    sql_type = model.field(f.field).sql_type
    if f.op == "isnull":
        return f"{column} IS {'' if f.value in (True, None, 'true') else 'NOT '}NULL"
    if f.op == "in":
        values = f.value if isinstance(f.value, list) else [f.value]
        args.append([str(v) for v in values])
        return f"{column}::text = ANY(${len(args)}::text[])"
    if f.op in ("contains", "startswith"):
        text = str(f.value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args.append(f"%{text}%" if f.op == "contains" else f"{text}%")
        return f"{column}::text LIKE ${len(args)}"
    args.append(None if f.value is None else str(f.value))
    return f"{column} {_OPS[f.op]} ${len(args)}::text::{sql_type}"


def build_query(
    model: Model,
    fields: Sequence[str],
    filters: Sequence[ExportFilter],
    order_by: Sequence[str],
    *,
    escape_formulas: bool = True,
) -> ExportQuery:
    """Raises ``ExportFailure`` naming an unknown field."""
    columns = [_field(model, f, "fields") for f in fields] or list(model.field_names)
    args: list[object] = []
    where = " AND ".join(_condition(model, f, args) for f in filters) or "true"
    table = f"{_q(model.schema)}.{_q(model.table)}"
    order = []
    for item in order_by or [model.natural_key]:
        desc = item.startswith("-")
        # qualified: a bare name would mean csv_sql's output column of that name (the
        # neutralised text), sorted as computed values instead of read in index order
        column = f"{table}.{_q(_field(model, item.lstrip('-'), 'order_by'))}"
        order.append(f"{column}{' DESC' if desc else ''}")
    select = ", ".join(_q(c) for c in columns)
    tail = f"FROM {table} WHERE {where} ORDER BY {', '.join(order)}"
    return ExportQuery(
        columns=columns,
        sql=f"SELECT {select} {tail}",
        count_sql=f"SELECT count(*) FROM {table} WHERE {where}",
        args=args,
        csv_sql=(
            f"SELECT {', '.join(_csv_column(model, c, escape_formulas) for c in columns)} {tail}"
        ),
    )
