"""Fast, deterministic files of university students for the users.User model.

The columns are those of the sample-data generator ``gen_users.py`` (the model's field names), with
Persian and Latin names, staff without a student number, and valid Iranian national ids.
Choices come from a multiplicative hash of the row number instead of a random generator, so
a row depends on its number only: the same arguments always give the same bytes, and the
upsert variant has the same people with a different faculty on every row.

National ids: 9 digits from ``i`` by an affine bijection modulo 10**9 (387 420 489 = 3**18
is prime to 10), then the check digit, so they are unique for every i below 10**9. None of the
rows below 112 397 289 maps onto a repeated digit (an invalid id like 1111111111).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

__all__ = [
    "FIELDS",
    "MAX_ROWS",
    "check_digit",
    "ensure_csv",
    "ensure_xlsx",
    "national_id",
    "rows",
    "write_csv",
    "write_xlsx",
]

GENERATOR_VERSION = 1
MAX_ROWS = 9_999_999  # usernames have seven digits

FIELDS: tuple[str, ...] = (
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
)

FIRST = (
    "علی", "محمد", "حسین", "سارا", "مریم", "فاطمه", "زهرا", "نگار", "کیان", "آرش",
    "یاسمن", "نیلوفر", "Ali", "Sara", "John", "Emma", "Reza", "Mia", "Zoë", "José",
)  # fmt: skip
LAST = (
    "محمدی", "حسینی", "احمدی", "رضایی", "کریمی", "موسوی", "جعفری", "صادقی", "نوری",
    "Smith", "Brown", "Garcia", "O'Neil", "Müller", "Karimi", "Nguyen", "Van der Berg",
)  # fmt: skip
FACULTIES = (
    "Engineering", "Medicine", "Law", "Science", "Arts", "Economics",
    "Agriculture", "Education", "Computer Science", "Architecture",
)  # fmt: skip

_NID_MUL = 387_420_489
_NID_ADD = 12_345
_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_BIRTHS = tuple((date(1970, 1, 1) + timedelta(days=d)).isoformat() for d in range(0, 12_000, 3))
_TEHRAN = timezone(timedelta(hours=3, minutes=30))
_JOINED = tuple(
    (datetime(2015, 9, 1, tzinfo=_TEHRAN if k % 2 else UTC) + timedelta(minutes=k * 1_223))
    .isoformat()
    for k in range(4_096)
)  # fmt: skip


def check_digit(nine: str) -> int:
    r = sum(int(d) * w for d, w in zip(nine, _WEIGHTS, strict=True)) % 11
    return r if r < 2 else 11 - r


def national_id(i: int) -> str:
    nine = f"{(i * _NID_MUL + _NID_ADD) % 1_000_000_000:09d}"
    return nine + str(check_digit(nine))


def rows(count: int, *, faculty_shift: int = 0) -> Iterator[tuple[str, ...]]:
    """Rows 1..count in ``FIELDS`` order; ``faculty_shift`` 1..9 changes every faculty."""
    if not 0 <= count <= MAX_ROWS:
        raise ValueError(f"at most {MAX_ROWS} rows")
    n_first, n_last, n_fac = len(FIRST), len(LAST), len(FACULTIES)
    n_birth, n_joined = len(_BIRTHS), len(_JOINED)
    for i in range(1, count + 1):
        h = (i * 2_654_435_761) & 0xFFFFFFFF
        pick = h % 100
        role = "student" if pick < 85 else "staff" if pick < 95 else "faculty"
        name = f"u{i:07d}"
        yield (
            name,
            f"{(i * 7_919_821_201 + 1_402_000_123) % 10**10:010d}" if role == "student" else "",
            national_id(i),
            FIRST[(h >> 7) % n_first],
            LAST[(h >> 11) % n_last],
            f"{name}@univ.example.ac.ir",
            f"09{(i * 48_271 + 9_120_000) % 10**9:09d}",
            _BIRTHS[(h >> 3) % n_birth],
            role,
            FACULTIES[((h >> 16) + faculty_shift) % n_fac],
            "false" if (h >> 13) % 4 == 0 else "true",
            _JOINED[(h >> 19) % n_joined],
        )


# ---------------------------------------------------------------- files


def write_csv(path: Path, count: int, *, faculty_shift: int = 0) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        batch: list[tuple[str, ...]] = []
        for row in rows(count, faculty_shift=faculty_shift):
            batch.append(row)
            if len(batch) >= 10_000:
                writer.writerows(batch)
                batch.clear()
        writer.writerows(batch)
    os.replace(tmp, path)


def write_xlsx(path: Path, count: int) -> None:
    from openpyxl import Workbook

    tmp = path.with_name(path.name + ".part")
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("students")
    ws.append(list(FIELDS))
    for row in rows(count):
        ws.append(list(row))
    wb.save(tmp)
    os.replace(tmp, path)


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _is_current(path: Path, count: int, variant: str) -> bool:
    try:
        meta = json.loads(_meta_path(path).read_text())
    except (OSError, ValueError):
        return False
    return bool(
        path.is_file()
        and meta.get("rows") == count
        and meta.get("variant") == variant
        and meta.get("version") == GENERATOR_VERSION
        and meta.get("bytes") == path.stat().st_size
    )


def _remember(path: Path, count: int, variant: str) -> None:
    meta = {
        "rows": count,
        "variant": variant,
        "version": GENERATOR_VERSION,
        "bytes": path.stat().st_size,
    }
    _meta_path(path).write_text(json.dumps(meta))


def ensure_csv(path: Path, count: int, *, faculty_shift: int = 0) -> bool:
    """Write the file unless it is already there with this row count; True if written."""
    variant = f"csv-shift{faculty_shift}"
    if _is_current(path, count, variant):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path, count, faculty_shift=faculty_shift)
    _remember(path, count, variant)
    return True


def ensure_xlsx(path: Path, count: int) -> bool:
    if _is_current(path, count, "xlsx"):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_xlsx(path, count)
    _remember(path, count, "xlsx")
    return True
