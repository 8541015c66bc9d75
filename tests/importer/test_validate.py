"""RowValidator against the ``users.User`` catalogue model; no servers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from contracts.jobs import RejectedRow
from services.core.catalogue import Model, get_model
from services.importer.errors import JobFailure
from services.importer.validate import RowValidator, ValidRow


@pytest.fixture(scope="module")
def model() -> Model:
    return get_model("users.User")


def check_digit(first_nine: str) -> int:
    """The Iranian national id rule: r = sum(digit * (10 - position)) mod 11."""
    r = sum(int(d) * (10 - i) for i, d in enumerate(first_nine)) % 11
    return r if r < 2 else 11 - r


def national_id(first_nine: str) -> str:
    return first_nine + str(check_digit(first_nine))


HEADER = [
    "username",
    "student_number",
    "national_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "birth_date",
    "role",
    "faculty",
    "is_active",
    "date_joined",
]
GOOD: dict[str, str] = {
    "username": "ali.rezaei",
    "student_number": "00123",
    "national_id": national_id("001234567"),
    "first_name": "Ali",
    "last_name": "Rezaei",
    "email": "ali.rezaei@uni.example",
    "phone": "+98 912 345 6789",
    "birth_date": "2001-02-03",
    "role": "student",
    "faculty": "Engineering",
    "is_active": "yes",
    "date_joined": "2024-03-04T05:06:07",
}


def row(header: Sequence[str] = HEADER, **changes: str) -> list[str]:
    values = {**GOOD, **changes}
    return [values.get(name, "") for name in header]


def valid(result: ValidRow | list[RejectedRow], validator: RowValidator) -> dict[str, object]:
    assert isinstance(result, ValidRow), result
    return dict(zip(validator.columns, result.values, strict=True))


def rejected(result: ValidRow | list[RejectedRow]) -> RejectedRow:
    assert isinstance(result, list), result
    assert len(result) == 1, result
    return result[0]


def test_good_row_gives_typed_values(model: Model) -> None:
    validator = RowValidator(model, HEADER, {})
    result = validator.check(2, row())
    assert isinstance(result, ValidRow)
    assert result.line == 2
    values = valid(result, validator)
    assert values["username"] == GOOD["username"]
    assert values["student_number"] == "00123"  # text, leading zeros kept
    assert values["national_id"] == GOOD["national_id"]
    assert values["birth_date"] == date.fromisoformat(GOOD["birth_date"])
    assert values["is_active"] is True
    joined = values["date_joined"]
    assert isinstance(joined, datetime)
    assert joined.tzinfo is not None
    # a time without an offset is read in the job's zone (Asia/Tehran unless set)
    tehran = ZoneInfo("Asia/Tehran")
    assert joined == datetime.fromisoformat(GOOD["date_joined"]).replace(tzinfo=tehran)
    assert values["phone"] == GOOD["phone"].replace(" ", "")
    assert validator.columns == list(model.field_names)


def test_datetime_offset_is_kept(model: Model) -> None:
    validator = RowValidator(model, HEADER, {})
    text = "2024-03-04T05:06:07+03:30"
    values = valid(validator.check(2, row(date_joined=text)), validator)
    assert values["date_joined"] == datetime.fromisoformat(text)


def test_national_id_with_leading_zero_kept(model: Model) -> None:
    validator = RowValidator(model, HEADER, {})
    nid = national_id("000000123")
    assert nid.startswith("000")
    assert valid(validator.check(2, row(national_id=nid)), validator)["national_id"] == nid


def test_empty_optional_cells_are_none(model: Model) -> None:
    validator = RowValidator(model, HEADER, {})
    values = valid(validator.check(2, row(faculty="  ", phone="")), validator)
    assert values["faculty"] is None
    assert values["phone"] is None


def _wrong_check_digit() -> str:
    first = "123456789"
    return first + str((check_digit(first) + 1) % 10)


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("email", "not-an-email", "not a valid email"),
        ("email", "two@@uni.example", "not a valid email"),
        ("national_id", _wrong_check_digit(), "check digit"),
        ("national_id", "12345", "10 digits"),
        ("username", "", "username is required"),
        ("username", "   ", "username is required"),
        ("birth_date", "1999-13-45", "does not exist"),
        ("role", "janitor", "not one of: student, staff, faculty"),
        ("is_active", "maybe", "yes/no"),
        ("first_name", "x" * 400, "400 characters long; at most 150"),
        ("last_name", "Raz\x00avi", "NUL byte"),
        ("date_joined", "yesterday", "date and time"),
    ],
)
def test_bad_cell_is_rejected(model: Model, column: str, value: str, problem: str) -> None:
    validator = RowValidator(model, HEADER, {})
    bad = rejected(validator.check(7, row(**{column: value})))
    assert bad.row == 7
    assert bad.column == column
    assert problem in bad.message


def test_all_equal_digits_national_id(model: Model) -> None:
    validator = RowValidator(model, HEADER, {})
    # ids of one repeated digit that pass the check-digit rule: only the extra rule refuses them
    passing = [str(d) * 10 for d in range(10) if check_digit(str(d) * 9) == d]
    assert passing
    for nid in passing:
        bad = rejected(validator.check(3, row(national_id=nid)))
        assert bad.column == "national_id"
        assert "all digits equal" in bad.message


def test_every_bad_cell_of_a_row_is_reported(model: Model) -> None:
    validator = RowValidator(model, HEADER, {})
    result = validator.check(5, row(email="nope", role="king"))
    assert isinstance(result, list)
    assert sorted(r.column or "" for r in result) == ["email", "role"]


def test_long_values_are_shortened_in_rejections(model: Model) -> None:
    validator = RowValidator(model, HEADER, {})
    bad = rejected(validator.check(2, row(first_name="y" * 400)))
    assert bad.value is not None
    assert len(bad.value) < 400


@pytest.mark.parametrize("delta", [-1, 1])
def test_ragged_row(model: Model, delta: int) -> None:
    validator = RowValidator(model, HEADER, {})
    cells = row()
    cells = cells[:delta] if delta < 0 else [*cells, "extra"]
    bad = rejected(validator.check(9, cells))
    assert bad.row == 9
    assert bad.column is None
    assert bad.message.startswith(f"row has {len(cells)} fields; the header has {len(HEADER)}")
    if delta > 0:
        assert "extra value 'extra'" in bad.message


def test_trailing_empty_cells_are_ignored(model: Model) -> None:
    validator = RowValidator(model, HEADER, {})
    assert isinstance(validator.check(3, [*row(), "", " "]), ValidRow)


def test_headers_match_ignoring_case_spaces_and_marks(model: Model) -> None:
    header = [f" {h.upper()}\u200f" for h in HEADER]
    assert isinstance(RowValidator(model, header, {}).check(2, row()), ValidRow)


def test_same_column_twice_after_case_folding_is_a_file_error(model: Model) -> None:
    with pytest.raises(JobFailure) as caught:
        RowValidator(model, [*HEADER, "Email "], {})
    assert caught.value.code == "duplicate_header"
    assert "'Email '" in caught.value.message


def test_missing_required_column(model: Model) -> None:
    header = [h for h in HEADER if h != "email"]
    with pytest.raises(JobFailure) as caught:
        RowValidator(model, header, {})
    assert caught.value.code == "missing_column"
    assert "email" in caught.value.message.split("(header")[0]


def test_missing_optional_column_is_fine(model: Model) -> None:
    header = [h for h in HEADER if h not in ("phone", "faculty")]
    validator = RowValidator(model, header, {})
    values = valid(validator.check(2, row(header)), validator)
    assert "phone" not in values
    assert values["email"] == GOOD["email"]


def test_field_mapping_from_persian_header(model: Model) -> None:
    persian = "نام کاربری"
    header = [persian if h == "username" else h for h in HEADER]
    validator = RowValidator(model, header, {persian: "username"})
    cells = row()  # same order: the Persian column holds the username
    assert valid(validator.check(2, cells), validator)["username"] == GOOD["username"]


def test_mapping_to_unknown_field(model: Model) -> None:
    with pytest.raises(JobFailure) as caught:
        RowValidator(model, [*HEADER, "Notes"], {"Notes": "remarks"})
    assert caught.value.code == "bad_mapping"
    assert "remarks" in caught.value.message


def test_two_columns_map_to_one_field(model: Model) -> None:
    persian = "نام کاربری"
    with pytest.raises(JobFailure) as caught:
        RowValidator(model, [*HEADER, persian], {persian: "username"})
    assert caught.value.code == "bad_header"
    assert "username" in caught.value.message


def test_extra_columns_are_ignored(model: Model) -> None:
    header = ["notes", *HEADER, "comment"]
    validator = RowValidator(model, header, {})
    cells = ["whatever", *row(), "x" * 1000]
    values = valid(validator.check(2, cells), validator)
    assert "notes" not in values
    assert "comment" not in values
    assert values["username"] == GOOD["username"]
