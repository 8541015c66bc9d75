"""``load_settings`` from an env dict, and the local file sandbox of ``storage``; no servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.core.settings import Settings, SettingsError, load_settings
from services.core.storage import FileNotAllowedError, local_path, safe_filename

# --- settings -------------------------------------------------------------------------------


def test_defaults_from_empty_env() -> None:
    assert load_settings(env={}) == Settings()


def test_values_are_parsed() -> None:
    settings = load_settings(
        env={
            "DM_IMPORT_CHUNK_SIZE": "250",
            "DM_GATEWAY_PORT": "9001",
            "DM_MAX_FILE_SIZE": "2048",
            "DM_ALLOWED_FORMATS": " CSV, Json ,,XLSX ",
            "DM_BUS_PREFIX": "t1",
            "DM_DATABASE_URL": "postgresql://dm@localhost:5432/dm",
            "DM_UNRELATED": "ignored",
        }
    )
    assert settings.import_chunk_size == 250
    assert settings.gateway_port == 9001
    assert settings.max_file_size == 2048
    assert settings.allowed_formats == ("csv", "json", "xlsx")
    assert settings.bus_prefix == "t1"
    assert settings.database_url == "postgresql://dm@localhost:5432/dm"
    assert settings.export_chunk_size == Settings().export_chunk_size


def test_empty_variable_means_default() -> None:
    assert load_settings(env={"DM_IMPORT_CHUNK_SIZE": ""}).import_chunk_size == (
        Settings().import_chunk_size
    )


def test_overrides_win_over_env() -> None:
    settings = load_settings(env={"DM_IMPORT_CHUNK_SIZE": "250"}, import_chunk_size=7)
    assert settings.import_chunk_size == 7


@pytest.mark.parametrize("raw", ["lots", "1.5", "10k"])
def test_non_number_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="DM_IMPORT_CHUNK_SIZE") as caught:
        load_settings(env={"DM_IMPORT_CHUNK_SIZE": raw})
    assert repr(raw) in str(caught.value)


@pytest.mark.parametrize(
    "name",
    ["DM_IMPORT_CHUNK_SIZE", "DM_EXPORT_CHUNK_SIZE", "DM_MAX_FILE_SIZE", "DM_SYNC_BATCH_SIZE"],
)
@pytest.mark.parametrize("raw", ["0", "-5"])
def test_sizes_must_be_positive(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env={name: raw})


@pytest.mark.parametrize(
    "url", ["mysql://u@h/db", "sqlite:///x.db", "postgresql+asyncpg://u@h/db", "localhost:5432"]
)
def test_non_postgresql_database_url_is_refused(url: str) -> None:
    with pytest.raises(SettingsError, match="DM_DATABASE_URL"):
        load_settings(env={"DM_DATABASE_URL": url})


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u:p@h:5433/db"])
def test_postgresql_database_url_is_accepted(url: str) -> None:
    assert load_settings(env={"DM_DATABASE_URL": url}).database_url == url


def test_imports_root_defaults_under_data_dir(tmp_path: Path) -> None:
    settings = load_settings(env={"DM_DATA_DIR": str(tmp_path)})
    assert settings.imports_path == (tmp_path / "imports").resolve()


# --- local_path -----------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "imports"
    root.mkdir()
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("a,b\n", encoding="utf-8")
    return outside


@pytest.mark.parametrize(
    "file_path", ["../x", "../outside/secret.csv", "a/../../x", "a/b/../../../x"]
)
def test_relative_escape_is_refused(root: Path, file_path: str) -> None:
    with pytest.raises(FileNotAllowedError, match="outside the imports root"):
        local_path(root, file_path)


def test_absolute_path_outside_is_refused(root: Path, outside: Path) -> None:
    with pytest.raises(FileNotAllowedError):
        local_path(root, str(outside / "secret.csv"))
    with pytest.raises(FileNotAllowedError):
        local_path(root, "/etc/passwd")


def test_absolute_path_inside_is_accepted(root: Path) -> None:
    target = root / "in" / "users.csv"
    assert local_path(root, str(target)) == target.resolve()


def test_symlink_escape_is_refused(root: Path, outside: Path) -> None:
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "file-link.csv").symlink_to(outside / "secret.csv")
    with pytest.raises(FileNotAllowedError):
        local_path(root, "link/secret.csv")
    with pytest.raises(FileNotAllowedError):
        local_path(root, "file-link.csv")


def test_symlink_inside_root_is_followed(root: Path) -> None:
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert local_path(root, "alias/users.csv") == (root / "real" / "users.csv").resolve()


@pytest.mark.parametrize("file_path", ["users.csv", "2024/fall/users.csv", "a/./b/../c.csv"])
def test_nested_relative_path_is_accepted(root: Path, file_path: str) -> None:
    expected = Path(os.path.normpath(root.resolve() / file_path))
    assert local_path(root, file_path) == expected
    assert root.resolve() in expected.parents


def test_root_given_through_a_symlink(tmp_path: Path, root: Path) -> None:
    alias = tmp_path / "root-alias"
    alias.symlink_to(root, target_is_directory=True)
    assert local_path(alias, "x.csv") == root.resolve() / "x.csv"


# --- safe_filename --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("users.csv", "users.csv"),
        ("dir/sub/users.csv", "users.csv"),
        ("/etc/passwd", "passwd"),
        ("../../users.csv", "users.csv"),
        ("C:\\Users\\me\\users.csv", "users.csv"),
        ("..\\..\\users.csv", "users.csv"),
        ("کاربران.csv", "کاربران.csv"),
    ],
)
def test_safe_filename_strips_directories(name: str, expected: str) -> None:
    assert safe_filename(name) == expected
    assert "/" not in safe_filename(name)


@pytest.mark.parametrize("name", ["", ".", "..", "a/..", "/", "..\\"])
def test_safe_filename_refuses_non_names(name: str) -> None:
    with pytest.raises(FileNotAllowedError, match="not a file name"):
        safe_filename(name)
