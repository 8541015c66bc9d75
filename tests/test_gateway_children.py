"""The gateway accepts ``children`` in a job's options and refuses names it can tell are
wrong before the job is created (no servers)."""

from __future__ import annotations

import msgspec
import pytest
from litestar.exceptions import ClientException

from contracts.jobs import ChildImport, JobOptions
from services.gateway.jobs import _check_fields, _options
from services.gateway.schemas import JobOptionsBody


def _body(children: dict[str, object]) -> JobOptionsBody:
    return msgspec.convert({"children": children}, JobOptionsBody)


def test_children_reach_the_job_options() -> None:
    body = _body(
        {"courses": {"model": "enrollments.Enrollment", "parent_key": {"username": "student"}}}
    )
    _check_fields("users.User", body)
    assert _options(body) == JobOptions(
        children={
            "courses": ChildImport(
                model="enrollments.Enrollment", parent_key={"username": "student"}
            )
        }
    )


@pytest.mark.parametrize(
    ("child", "says"),
    [
        ({"model": "nope.Nope", "parent_key": {"username": "student"}}, "children.courses"),
        ({"model": "enrollments.Enrollment", "parent_key": {}}, "parent_key names no field"),
        ({"model": "enrollments.Enrollment", "parent_key": {"nick": "student"}}, "'nick'"),
        ({"model": "enrollments.Enrollment", "parent_key": {"username": "who"}}, "'who'"),
        (
            {
                "model": "enrollments.Enrollment",
                "parent_key": {"username": "student"},
                "field_mapping": {"score": "points"},
            },
            "'points'",
        ),
    ],
)
def test_bad_children_are_refused_naming_the_place(child: dict[str, object], says: str) -> None:
    with pytest.raises(ClientException) as caught:
        _check_fields("users.User", _body({"courses": child}))
    assert says in str(caught.value.detail)


def test_unknown_names_inside_a_child_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        _body({"courses": {"model": "enrollments.Enrollment", "parent_key": {}, "typo": 1}})
