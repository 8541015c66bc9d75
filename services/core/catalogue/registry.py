"""Built-in university models and the lookup that refuses everything else."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

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
from services.core.catalogue.normalise import fold_arabic_letters
from services.core.catalogue.sqltypes import parse_integer, parse_numeric

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

_CODE = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_CODE_SHOWN = "a code (letters, digits and . - _)"


def _reference(text: str) -> str:
    """A reference that may be a code or a name: names are stored with Arabic letters
    folded to Persian (text cells are), so a name from Excel on Windows still matches."""
    return fold_arabic_letters(text)


def _code_field() -> Field:
    """The short code that keys faculties and courses (``ENG``, ``CE101``)."""
    return Field(
        "code",
        "varchar(20)",
        parse_pattern(_CODE, _CODE_SHOWN),
        required=True,
        max_length=20,
        unique=True,
        kind="identifier",
    )


FACULTY = Model(
    name="faculties.Faculty",
    schema="public",
    table="faculties_faculty",
    natural_key="code",
    touched_column="updated_at",
    description="A faculty (دانشکده) of the university, by its code.",
    fields=(
        _code_field(),
        Field("name_fa", "varchar(200)", required=True, max_length=200, unique=True),
        Field("name_en", "varchar(200)", max_length=200, unique=True),
    ),
)

COURSE = Model(
    name="courses.Course",
    schema="public",
    table="courses_course",
    natural_key="code",
    touched_column="updated_at",
    description="A course offered by a faculty; a file may name the faculty by code or name.",
    fields=(
        _code_field(),
        Field("title_fa", "varchar(200)", max_length=200),
        Field("title_en", "varchar(200)", max_length=200),
        Field(
            "credits",
            "smallint",
            parse_integer("smallint"),
            required=True,
            kind="number",
            low=0,
            high=10,
        ),
        # The stored column is varchar(20) (a faculty code), but the cell may carry a
        # faculty's name (up to 200 characters) until the loader resolves it: the staging
        # table and the length check follow this field, so they must hold a name. A value
        # that resolves to no code is rejected before the insert, so nothing longer than a
        # stored code ever reaches the table.
        Field("faculty", "varchar(200)", _reference, max_length=200, kind="identifier"),
    ),
    foreign_keys=(
        ForeignKey(
            column="faculty",
            schema="public",
            table="faculties_faculty",
            target="code",
            lookup=("name_fa", "name_en"),
        ),
    ),
)

ENROLLMENT = Model(
    name="enrollments.Enrollment",
    schema="public",
    table="enrollments_enrollment",
    natural_key="student",
    key_columns=("student", "course", "term"),
    touched_column="updated_at",
    description="A student's enrollment in a course in one term, with the grade if given.",
    fields=(
        Field(
            "student",
            "varchar(150)",
            parse_pattern(r"[\w.@+-]+", "a username or student number"),
            required=True,
            max_length=150,
            kind="identifier",
        ),
        Field(
            "course",
            "varchar(20)",
            parse_pattern(_CODE, _CODE_SHOWN),
            required=True,
            max_length=20,
            kind="identifier",
        ),
        Field(
            "term",
            "varchar(10)",
            parse_pattern(r"[0-9]{4}-[123]", "a term (year-1, -2 or -3, like 1402-1)"),
            required=True,
            max_length=10,
            kind="identifier",
        ),
        Field(
            "grade",
            "numeric(4,2)",
            parse_numeric(4, 2),
            kind="number",
            low=Decimal(0),
            high=Decimal(20),
        ),
    ),
    foreign_keys=(
        ForeignKey(
            column="student",
            schema="public",
            table="users_user",
            target="username",
            lookup=("student_number",),
        ),
        ForeignKey(column="course", schema="public", table="courses_course", target="code"),
    ),
)

MODELS: dict[str, Model] = {m.name: m for m in (USER, FACULTY, COURSE, ENROLLMENT)}


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
