"""The model catalogue is consistent: keys and references name real fields."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.core.catalogue import MODELS, FieldError, Model, UnknownModelError, get_model

BUILT_IN = ("users.User", "faculties.Faculty", "courses.Course", "enrollments.Enrollment")


def _by_table(schema: str, table: str) -> Model:
    found = [m for m in MODELS.values() if (m.schema, m.table) == (schema, table)]
    assert len(found) == 1, f"{schema}.{table} is not exactly one model"
    return found[0]


def test_built_in_models_are_registered() -> None:
    for name in BUILT_IN:
        assert get_model(name).name == name


@pytest.mark.parametrize("name", sorted(MODELS))
def test_natural_key_and_key_columns_are_fields(name: str) -> None:
    model = MODELS[name]
    assert model.natural_key in model.field_names
    assert model.key
    for column in model.key:
        assert column in model.field_names
        assert model.field(column).required, f"key column {column} must be required"
    if model.key_columns:
        assert model.natural_key in model.key_columns
    assert len(set(model.field_names)) == len(model.field_names)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_foreign_key_columns_are_fields_and_targets_exist(name: str) -> None:
    model = MODELS[name]
    for fk in model.foreign_keys:
        assert fk.column in model.field_names
        referenced = _by_table(fk.schema, fk.table)
        assert fk.target == referenced.natural_key
        for column in fk.lookup:
            assert column in referenced.field_names


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(UnknownModelError) as caught:
        get_model("courses.Nope")
    message = str(caught.value)
    assert "'courses.Nope'" in message
    for name in BUILT_IN:
        assert name in message


def test_enrollment_key_is_composite() -> None:
    assert get_model("enrollments.Enrollment").key == ("student", "course", "term")


def test_enrollment_fields_parse_and_refuse() -> None:
    model = get_model("enrollments.Enrollment")
    term = model.field("term").parse
    assert term("1402-1") == "1402-1"
    for bad in ("1402-4", "1402-0", "140-1", "1402/1"):
        with pytest.raises(FieldError):
            term(bad)
    grade = model.field("grade")
    assert grade.parse("18.5") == Decimal("18.50")
    assert (grade.low, grade.high) == (Decimal(0), Decimal(20))
    with pytest.raises(FieldError):
        grade.parse("18.555")


def test_course_credits_are_a_bounded_smallint() -> None:
    credits = get_model("courses.Course").field("credits")
    assert credits.kind == "number"
    assert (credits.low, credits.high) == (0, 10)
    assert credits.parse("3") == 3
    with pytest.raises(FieldError):
        credits.parse("three")


def test_course_faculty_reference_folds_arabic_letters() -> None:
    # a faculty's Persian name typed with Arabic yeh/kaf still matches the stored name
    assert get_model("courses.Course").field("faculty").parse("علوم كامپيوتر") == "علوم کامپیوتر"
