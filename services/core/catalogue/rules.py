"""Field rules an operator configures on top of what a table's columns declare.

A TOML file (``DM_FIELD_RULES``) names, per model and field, what a column type cannot say::

    [models."registrar.students"]
    natural_key = ["student_no"]            # default: the primary key

    [models."registrar.students".fields]
    national_id = { rule = "iran_national_id" }
    phone = { rule = "iran_mobile" }
    bank_card = { rule = "bank_card" }
    gpa = { min = 0, max = 20 }
    birth_date = { min = "1900-01-01", max = "2100-12-31", calendar = "auto" }
    enrolled_at = { zone = "Asia/Tehran" }
    department = { lookup = ["code", "name_fa", "name_en"] }
    student_no = { rule = "digits", length = 9, required = true }
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import msgspec

__all__ = ["FieldRule", "ModelRules", "RulesError", "load_rules"]

RuleName = Literal[
    "iran_national_id", "iran_mobile", "bank_card", "luhn", "postal_code_ir", "email", "digits"
]


class RulesError(ValueError):
    """The rules file cannot be read or names something unknown."""


class FieldRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rule: RuleName | None = None
    length: int | None = None
    min: int | float | str | None = None
    max: int | float | str | None = None
    required: bool | None = None
    calendar: Literal["gregorian", "jalali", "auto"] | None = None
    zone: str | None = None
    lookup: list[str] = msgspec.field(default_factory=list)
    kind: Literal["text", "identifier", "number", "date", "phone", "email"] | None = None
    aliases: list[str] = msgspec.field(default_factory=list)


class ModelRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    natural_key: list[str] = msgspec.field(default_factory=list)
    fields: dict[str, FieldRule] = msgspec.field(default_factory=dict)


class _RulesFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    models: dict[str, ModelRules] = msgspec.field(default_factory=dict)


def load_rules(path: str) -> dict[str, ModelRules]:
    """Raises ``RulesError`` naming the file and the problem."""
    if not path:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return msgspec.convert(data, _RulesFile).models
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as e:
        raise RulesError(f"field rules {path}: {e}") from e
