"""Built-in university models and the lookup that refuses everything else."""

from __future__ import annotations

from dataclasses import dataclass

from services.core.catalogue.fields import (
    Field,
    parse_bool,
    parse_choice,
    parse_date,
    parse_datetime,
    parse_email,
    parse_iran_national_id,
    parse_pattern,
    parse_phone,
)

__all__ = ["MODELS", "ForeignKey", "Model", "UnknownModelError", "get_model", "register_models"]


class UnknownModelError(LookupError):
    """The model name is not in the catalogue."""


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """``column`` references ``schema.table(target)``; ``lookup`` names other unique columns
    of that table by which a file may name the row (a department by code or by name)."""

    column: str
    schema: str
    table: str
    target: str
    lookup: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Model:
    """A loadable table: its fields in column order, its natural key and unique keys."""

    name: str
    schema: str
    table: str
    fields: tuple[Field, ...]
    natural_key: str
    description: str = ""
    # a column set to now() by every insert and update: tells rows this run already wrote
    touched_column: str | None = None
    # several columns when the key is composite (an enrollment: student, course, term)
    key_columns: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()

    @property
    def key(self) -> tuple[str, ...]:
        return self.key_columns or (self.natural_key,)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    @property
    def unique_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.unique)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


USER = Model(
    name="users.User",
    schema="public",
    table="users_user",
    natural_key="username",
    touched_column="updated_at",
    description="A university person: student, staff or faculty member.",
    fields=(
        Field(
            "username",
            "varchar(150)",
            parse_pattern(r"[\w.@+-]+", "a username (letters, digits and . @ + - _)"),
            required=True,
            max_length=150,
            unique=True,
            kind="identifier",
        ),
        Field(
            "student_number",
            "varchar(20)",
            parse_pattern(r"[0-9]+", "a student number (digits only)"),
            max_length=20,
            kind="identifier",
        ),
        Field(
            "national_id",
            "varchar(10)",
            parse_iran_national_id,
            required=True,
            unique=True,
            kind="identifier",
        ),
        Field("first_name", "varchar(150)", required=True, max_length=150),
        Field("last_name", "varchar(150)", required=True, max_length=150),
        Field(
            "email",
            "varchar(254)",
            parse_email,
            required=True,
            max_length=254,
            unique=True,
            kind="email",
        ),
        Field("phone", "varchar(20)", parse_phone, max_length=20, kind="phone"),
        Field("birth_date", "date", parse_date, kind="date"),
        Field(
            "role",
            "varchar(20)",
            parse_choice("student", "staff", "faculty"),
            required=True,
            max_length=20,
        ),
        Field("faculty", "varchar(100)", max_length=100),
        Field("is_active", "boolean", parse_bool, db_default="true"),
        Field("date_joined", "timestamptz", parse_datetime, db_default="now()", kind="datetime"),
    ),
)

MODELS: dict[str, Model] = {USER.name: USER}


def register_models(models: dict[str, Model]) -> None:
    """Add models read from the database (operator-enabled tables) to the catalogue."""
    MODELS.update(models)


def get_model(name: str) -> Model:
    """Raises ``UnknownModelError`` naming the models that exist."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise UnknownModelError(f"unknown model {name!r} (known models: {known})") from None
