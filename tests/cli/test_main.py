"""Argument parsing, building the jobs' options from flags, and the admin commands' choice
of database (no gateway or database needed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from services.cli.admin import resolve_database_url
from services.cli.commands_export import build_export_options
from services.cli.commands_import import build_import_options, build_job_body
from services.cli.errors import UsageError
from services.cli.main import _settings_overrides, build_parser
from services.core.settings import Settings


def test_connection_flags_work_before_and_after_the_subcommand() -> None:
    parser = build_parser()
    before = parser.parse_args(["--gateway", "http://g:1", "--token", "t", "status"])
    after = parser.parse_args(["status", "--gateway", "http://g:1", "--token", "t"])
    expected = {"gateway_url": "http://g:1", "token": "t"}
    assert _settings_overrides(before) == _settings_overrides(after) == expected
    assert _settings_overrides(parser.parse_args(["status"])) == {}


def test_mapping_flag_accepts_several_pairs_and_repeats() -> None:
    args = build_parser().parse_args(
        ["import", "--file", "a.csv", "--model", "m", "--mapping", "a=b", "c=d", "--mapping", "e=f"]
    )
    assert args.mapping == ["a=b", "c=d", "e=f"]


def test_database_url_prefers_settings_then_run_file(tmp_path: Path) -> None:
    configured = Settings(database_url="postgresql://a/b", data_dir=str(tmp_path))
    assert resolve_database_url(configured)[0] == "postgresql://a/b"
    (tmp_path / "run.json").write_text(json.dumps({"database_url": "postgresql://run/dm"}))
    url, source = resolve_database_url(Settings(data_dir=str(tmp_path)))
    assert url == "postgresql://run/dm"
    assert "run.json" in source


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def import_args(*flags: str) -> argparse.Namespace:
    return parse("import", "--file", "a.csv", "--model", "users.User", *flags)


def export_args(*flags: str) -> argparse.Namespace:
    return parse("export", "--model", "users.User", "--output", "u.csv", *flags)


def test_import_without_flags_sends_no_options_so_server_defaults_apply() -> None:
    assert build_import_options(import_args(), "csv") == {}
    body = build_job_body(import_args(), "upload:x/a.csv", "csv")
    assert body["options"] == {}
    assert body["title"] == "import a.csv"


def test_every_import_flag_becomes_its_option() -> None:
    args = import_args(
        "--mode",
        "upsert",
        "--encoding",
        "cp1256",
        "--delimiter",
        "semicolon",
        "--mapping",
        "Name=first_name",
        "--sheet",
        "Students 1404",
        "--calendar",
        "jalali",
        "--time-zone",
        "Asia/Tehran",
        "--no-fold-arabic",
        "--dry-run",
        "--all-or-nothing",
        "--max-errors",
        "2.5",
    )
    assert build_import_options(args, "xlsx") == {
        "mode": "upsert",
        "encoding": "cp1256",
        "delimiter": ";",
        "field_mapping": {"Name": "first_name"},
        "sheet": "Students 1404",
        "calendar": "jalali",
        "time_zone": "Asia/Tehran",
        "fold_arabic_letters": False,
        "dry_run": True,
        "all_or_nothing": True,
        "max_error_percent": 2.5,
    }


def test_max_errors_zero_is_sent() -> None:
    assert build_import_options(import_args("--max-errors", "0"), "csv") == {
        "max_error_percent": 0.0
    }


@pytest.mark.parametrize(
    "flags",
    [
        ("--max-errors", "101"),
        ("--max-errors", "many"),
        ("--calendar", "julian"),
        ("--mode", "replace"),
    ],
)
def test_bad_import_flag_values_are_usage_errors(
    flags: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        import_args(*flags)
    assert caught.value.code == 2
    assert flags[0] in capsys.readouterr().err


def test_header_row_is_sent_for_xlsx_only() -> None:
    assert build_import_options(import_args("--header-row", "3"), "xlsx") == {"header_row": 3}
    with pytest.raises(UsageError, match="--header-row applies to xlsx"):
        build_import_options(import_args("--header-row", "3"), "csv")
    with pytest.raises(UsageError, match="counted from 1"):
        build_import_options(import_args("--header-row", "0"), "xlsx")


def test_sheet_needs_an_xlsx_file() -> None:
    with pytest.raises(UsageError, match="--sheet applies to xlsx"):
        build_import_options(import_args("--sheet", "S"), "csv")


def test_unknown_time_zone_is_refused_before_uploading() -> None:
    with pytest.raises(UsageError, match="--time-zone"):
        build_import_options(import_args("--time-zone", "Tehran"), "csv")


def test_export_without_flags_sends_no_options() -> None:
    assert build_export_options(export_args()) == {}


def test_export_fields_filters_and_order() -> None:
    args = export_args(
        "--fields",
        "username,email",
        "--filter",
        "role",
        "in",
        "staff,faculty",
        "--filter",
        "phone",
        "isnull",
        "false",
        "--order-by",
        "last_name,-date_joined",
    )
    assert build_export_options(args) == {
        "fields": ["username", "email"],
        "filters": [
            {"field": "role", "op": "in", "value": ["staff", "faculty"]},
            {"field": "phone", "op": "isnull", "value": False},
        ],
        "order_by": ["last_name", "-date_joined"],
    }


def test_export_without_formula_escapes() -> None:
    assert build_export_options(export_args("--no-escape-formulas")) == {"escape_formulas": False}


def test_filter_needs_three_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        export_args("--filter", "role", "eq")
    assert "--filter" in capsys.readouterr().err


def test_rejections_output_flag() -> None:
    args = parse("rejections", "abc", "--output", "errors.csv")
    assert args.output == Path("errors.csv")
    assert parse("rejections", "abc").output is None


def test_a_descending_first_order_field_is_given_with_equals() -> None:
    # argparse takes "-date_joined" after a space for an unknown flag; "=" keeps it a value
    args = export_args("--order-by=-date_joined")
    assert build_export_options(args) == {"order_by": ["-date_joined"]}
