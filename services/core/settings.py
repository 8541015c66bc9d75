"""Settings from the environment (``DM_*``), mapping the original ``DATA_MANAGEMENT`` dict.

| variable                 | default                 | meaning                                   |
|--------------------------|-------------------------|-------------------------------------------|
| DM_NATS_URL              | (embedded server)       | NATS with JetStream                       |
| DM_DATABASE_URL          | (embedded PostgreSQL)   | plain ``postgresql://`` URL               |
| DM_GATEWAY_HOST/PORT     | 127.0.0.1 / 8000        | where the gateway listens                 |
| DM_GATEWAY_URL           | http://127.0.0.1:8000   | where ``dm`` finds the gateway            |
| DM_TOKEN                 |                         | bearer token used by ``dm``               |
| DM_DATA_DIR              | .dm                     | embedded servers' data and local files    |
| DM_IMPORTS_ROOT          | <data dir>/imports      | ``file_path`` of jobs is confined here    |
| DM_BUS_PREFIX            | dm                      | subject and stream name prefix            |
| DM_IMPORT_CHUNK_SIZE     | 10000                   | rows per committed chunk                  |
| DM_EXPORT_CHUNK_SIZE     | 1000                    | rows per export fetch                     |
| DM_MAX_FILE_SIZE         | 104857600               | bytes; larger uploads answer 413          |
| DM_ALLOWED_FORMATS       | csv,json,jsonl,xlsx     | comma separated                           |
| DM_BACKUP_RETENTION_DAYS | 30                      | days                                      |
| DM_SYNC_BATCH_SIZE       | 500                     | records per sync batch                    |
| DM_LOG_LEVEL             | INFO                    | logging level                             |
| DM_LOG_FORMAT            | auto                    | ``json``, ``console`` or ``auto``         |
| DM_WORKER_NAME           | host-pid                | name of this worker in logs and events    |
| DM_ACK_WAIT_SECONDS      | 30                      | a dead worker's job moves on after this   |
| DM_SCHEDULER_INTERVAL_SECONDS | 15                 | how often scheduled jobs are checked      |
| DM_MODEL_TABLES          |                         | ``schema.table,...`` enabled as models    |
| DM_FIELD_RULES           |                         | TOML file of field rules for those tables |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

__all__ = ["Settings", "SettingsError", "load_settings"]


class SettingsError(ValueError):
    """A ``DM_*`` variable has a value that cannot be used."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    nats_url: str = ""
    database_url: str = ""
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    gateway_url: str = "http://127.0.0.1:8000"
    token: str = ""
    data_dir: str = ".dm"
    imports_root: str = ""
    bus_prefix: str = "dm"
    import_chunk_size: int = 10000
    export_chunk_size: int = 1000
    max_file_size: int = 100 * 1024 * 1024
    allowed_formats: tuple[str, ...] = ("csv", "json", "jsonl", "xlsx")
    backup_retention_days: int = 30
    sync_batch_size: int = 500
    log_level: str = "INFO"
    log_format: str = "auto"
    worker_name: str = ""
    ack_wait_seconds: int = 30
    scheduler_interval_seconds: int = 15
    model_tables: tuple[str, ...] = ()
    field_rules: str = ""

    @property
    def imports_path(self) -> Path:
        return Path(self.imports_root or Path(self.data_dir) / "imports").resolve()

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()


_INT_FIELDS = {
    "gateway_port",
    "import_chunk_size",
    "export_chunk_size",
    "max_file_size",
    "backup_retention_days",
    "sync_batch_size",
    "ack_wait_seconds",
    "scheduler_interval_seconds",
}


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read ``DM_*`` variables; raises ``SettingsError`` naming the bad variable."""
    source = os.environ if env is None else env
    values: dict[str, object] = {}
    for name in Settings.__struct_fields__:
        raw = source.get(f"DM_{name.upper()}")
        if raw is None or raw == "":
            continue
        values[name] = _parse(name, raw)
    values.update(overrides)
    settings = Settings(**values)  # type: ignore[arg-type]
    _check(settings)
    return settings


def _parse(name: str, raw: str) -> object:
    if name in _INT_FIELDS:
        try:
            return int(raw)
        except ValueError as e:
            raise SettingsError(f"DM_{name.upper()}={raw!r} is not a whole number") from e
    if name == "allowed_formats":
        return tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    if name == "model_tables":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _check(settings: Settings) -> None:
    for name in (
        "import_chunk_size",
        "export_chunk_size",
        "max_file_size",
        "sync_batch_size",
        "ack_wait_seconds",
    ):
        if getattr(settings, name) <= 0:
            raise SettingsError(f"DM_{name.upper()} must be positive")
    db = settings.database_url
    if db and not db.startswith(("postgresql://", "postgres://")):
        raise SettingsError("DM_DATABASE_URL must be a plain postgresql:// URL")
