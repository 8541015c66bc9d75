"""Operator-enabled tables: models read from the database's own catalogue.

For each ``schema.table`` in ``DM_MODEL_TABLES`` the columns, their types, NOT NULL,
primary and unique keys and single-column foreign keys are read from ``pg_catalog``;
field rules (``DM_FIELD_RULES``) add what a column cannot say. Names come from the
database, never from a request.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.core.catalogue import checks
from services.core.catalogue.fields import (
    Field,
    FieldError,
    parse_bool,
    parse_email,
)
from services.core.catalogue.registry import ForeignKey, Model
from services.core.catalogue.rules import FieldRule, ModelRules
from services.core.catalogue.sqltypes import digits_text, parse_integer, parse_numeric

__all__ = ["ReflectError", "reflect_models"]


class ReflectError(LookupError):
    """An enabled table does not exist or cannot be used as a model."""


_COLUMNS = text("""
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS sql_type,
       t.typname AS base, a.attnotnull AS not_null,
       pg_get_expr(d.adbin, d.adrelid) AS default_expr,
       a.attidentity <> '' AS identity,
       information_schema._pg_char_max_length(a.atttypid, a.atttypmod) AS max_length,
       information_schema._pg_numeric_precision(a.atttypid, a.atttypmod) AS precision,
       information_schema._pg_numeric_scale(a.atttypid, a.atttypmod) AS scale
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = CAST(:rel AS regclass) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
""")

_KEYS = text("""
SELECT c.contype::text AS kind, array_agg(a.attname::text ORDER BY k.ord) AS columns
FROM pg_constraint c
CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
WHERE c.conrelid = CAST(:rel AS regclass) AND c.contype IN ('p', 'u')
GROUP BY c.oid, c.contype
""")

_FOREIGN = text("""
SELECT a.attname AS column, nf.nspname AS schema, cf.relname AS table, af.attname AS target
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_class cf ON cf.oid = c.confrelid
JOIN pg_namespace nf ON nf.oid = cf.relnamespace
JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1]
WHERE c.conrelid = CAST(:rel AS regclass) AND c.contype = 'f'
  AND array_length(c.conkey, 1) = 1
""")

_INTEGERS = {"int2": "smallint", "int4": "integer", "int8": "bigint"}
_CHECKS: dict[str, Any] = {
    "iran_national_id": checks.iran_national_id,
    "iran_mobile": checks.iran_mobile,
    "bank_card": checks.bank_card,
    "luhn": checks.luhn,
    "postal_code_ir": checks.postal_code_ir,
    "email": parse_email,
}


async def reflect_models(
    conn: AsyncConnection, tables: Sequence[str], rules: dict[str, ModelRules]
) -> dict[str, Model]:
    """Raises ``ReflectError`` naming a table that is missing or has no usable key."""
    models: dict[str, Model] = {}
    for name in tables:
        models[name] = await _reflect(conn, name, rules.get(name, ModelRules()))
    return models


async def _reflect(conn: AsyncConnection, name: str, rules: ModelRules) -> Model:
    schema, _, table = name.partition(".")
    if not table:
        raise ReflectError(f"enabled table {name!r} must be written schema.table")
    exists = (await conn.execute(text("SELECT to_regclass(:rel)"), {"rel": name})).scalar()
    if exists is None:
        raise ReflectError(f"enabled table {name!r} does not exist")
    columns = (await conn.execute(_COLUMNS, {"rel": name})).mappings().all()
    keys = (await conn.execute(_KEYS, {"rel": name})).mappings().all()
    foreign = (await conn.execute(_FOREIGN, {"rel": name})).mappings().all()
    primary = next((list(k["columns"]) for k in keys if k["kind"] == "p"), [])
    unique = {k["columns"][0] for k in keys if len(k["columns"]) == 1}
    key = rules.natural_key or primary
    if not key:
        raise ReflectError(
            f"enabled table {name!r} has no primary key; set natural_key in its field rules"
        )
    for field_name in rules.fields:
        if field_name not in {c["name"] for c in columns}:
            raise ReflectError(f"field rules name {field_name!r}, not a column of {name}")
    # text columns that hold codes rather than words: the key, and references not looked up
    # by name; their digits become ASCII (۵00000001 is student 500000001), as in identifiers
    codes = set(key) | {
        f["column"] for f in foreign if not rules.fields.get(f["column"], FieldRule()).lookup
    }
    fields = tuple(
        _field(c, rules.fields.get(c["name"], FieldRule()), unique, codes) for c in columns
    )
    fks = tuple(
        ForeignKey(
            column=f["column"],
            schema=f["schema"],
            table=f["table"],
            target=f["target"],
            lookup=tuple(rules.fields.get(f["column"], FieldRule()).lookup),
        )
        for f in foreign
    )
    return Model(
        name=name,
        schema=schema,
        table=table,
        fields=fields,
        natural_key=key[0],
        key_columns=tuple(key),
        foreign_keys=fks,
        description=f"{name}, enabled from the database",
    )


def _field(column: Any, rule: FieldRule, unique: set[str], codes: set[str]) -> Field:
    base: str = column["base"]
    default = column["default_expr"]
    generated = column["identity"] or (default is not None and "nextval(" in default)
    required = (
        rule.required
        if rule.required is not None
        else (bool(column["not_null"]) and default is None and not generated)
    )
    parse, kind = _parser(base, column, rule)
    if kind == "text" and column["name"] in codes and base not in ("bool", "json", "jsonb"):
        kind = "identifier"
    low, high = _bounds(rule, kind)
    return Field(
        name=column["name"],
        sql_type=column["sql_type"],
        parse=parse,
        required=required,
        max_length=column["max_length"],
        unique=column["name"] in unique,
        aliases=tuple(rule.aliases),
        db_default=default if column["not_null"] else None,
        kind=rule.kind or kind,
        calendar=rule.calendar,
        zone=rule.zone,
        low=low,
        high=high,
    )


def _parser(base: str, column: Any, rule: FieldRule) -> tuple[Any, Any]:
    if base in _INTEGERS:
        return parse_integer(_INTEGERS[base]), "number"
    if base == "numeric":
        return parse_numeric(column["precision"], column["scale"]), "number"
    if base == "float4":
        return _parse_real, "number"
    if base == "float8":
        return _parse_float, "number"
    if base == "date":
        return str, "date"
    if base in ("timestamptz", "timestamp"):
        return str, "datetime"
    if base == "bool":
        return parse_bool, "text"
    if base in ("json", "jsonb"):
        return _parse_json, "text"
    if base == "uuid":
        return _parse_uuid, "identifier"
    return _text_parser(rule), "identifier" if rule.rule else "text"


def _text_parser(rule: FieldRule) -> Any:
    if rule.rule == "digits":
        length = rule.length

        def parse_digits(value: str) -> str:
            digits = digits_text(value)
            if not digits.isascii() or not digits.isdigit():
                raise FieldError(f"{value!r} is not digits only")
            if length is not None and len(digits) != length:
                raise FieldError(f"{value!r} has {len(digits)} digits; {length} are expected")
            return digits

        return parse_digits
    if rule.rule in _CHECKS:
        check = _CHECKS[rule.rule]

        def parse_checked(value: str) -> Any:
            return check(digits_text(value)) if rule.rule != "email" else check(value)

        return parse_checked
    return str


def _bounds(rule: FieldRule, kind: str) -> tuple[object, object]:
    def convert(value: object) -> object:
        if value is None:
            return None
        if kind == "date" and isinstance(value, str):
            return date.fromisoformat(value)
        return value

    return convert(rule.min), convert(rule.max)


# what PostgreSQL's real holds: larger magnitudes overflow, smaller non-zero ones underflow
_REAL_MAX = 3.4028234663852886e38
_REAL_MIN = 1.401298464324817e-45
_NONZERO = re.compile("[1-9]")


def _parse_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError as e:
        raise FieldError(f"{value!r} is not a number") from e
    if not math.isfinite(number):  # NaN from a spreadsheet is junk, not a value
        raise FieldError(f"{value!r} is not a finite number (infinite, NaN or beyond 1.8e308)")
    if not number and _NONZERO.search(value.lower().partition("e")[0]):
        raise FieldError(f"{value} is too small for a double precision (it would be 0)")
    return number


def _parse_real(value: str) -> float:
    number = _parse_float(value)
    if abs(number) > _REAL_MAX or (number and abs(number) < _REAL_MIN):
        raise FieldError(f"{value} is out of range for a real (about 1.4e-45 to 3.4e38)")
    return number


def _parse_json(value: str) -> str:
    try:
        json.loads(value)
    except ValueError as e:
        raise FieldError(f"not valid JSON: {e}") from e
    return value


def _parse_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as e:
        raise FieldError(f"{value!r} is not a UUID") from e
