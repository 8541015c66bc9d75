"""Argument parsing and the admin commands' choice of database (no database needed)."""

from __future__ import annotations

import json
from pathlib import Path

from services.cli.admin import resolve_database_url
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
