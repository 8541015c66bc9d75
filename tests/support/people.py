"""Small files of valid university people, made on the fly for tests."""

from __future__ import annotations

import csv
from pathlib import Path

FIELDS = [
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


def national_id(i: int) -> str:
    digits = f"{(i * 104_729 + 7_919) % 10**9:09d}"
    total = sum(int(d) * (10 - k) for k, d in enumerate(digits)) % 11
    return digits + str(total if total < 2 else 11 - total)


def person(i: int) -> dict[str, str]:
    return {
        "username": f"p{i:07d}",
        "student_number": f"{i:010d}",
        "national_id": national_id(i),
        "first_name": "نگار" if i % 2 else "Sara",
        "last_name": "رضایی" if i % 3 else "O'Neil",
        "email": f"p{i:07d}@univ.example.ac.ir",
        "phone": f"0912{i % 10**7:07d}",
        "birth_date": "2001-02-03",
        "role": "student",
        "faculty": "Science",
        "is_active": "true",
        "date_joined": "2024-09-01T08:00:00+03:30",
    }


def write_people(path: Path, start: int, count: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for i in range(start, start + count):
            writer.writerow(person(i))
    return path
