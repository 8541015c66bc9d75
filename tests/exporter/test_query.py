"""The export query against a real PostgreSQL: the CSV form neutralises formulas in SQL but
must keep the order of the stored values (regression: ORDER BY used to pick the neutralised
output column of the same name, sorting by the apostrophe-prefixed text)."""

from __future__ import annotations

import asyncpg

from services.core.catalogue import get_model
from services.exporter.query import build_query

MODEL = get_model("users.User")


async def test_csv_rows_sort_by_the_stored_values_not_the_neutralised_text(
    conn: asyncpg.Connection,
) -> None:
    # a tab sorts before '!' and an apostrophe after it: neutralising "\tb" to "'\tb" would
    # move it behind "!a" where bytes decide the order
    names = ["\tb", "!a", "=c", "d", "@e", "-f"]
    for i, name in enumerate(names):
        await conn.execute(
            "INSERT INTO users_user (username, national_id, first_name, last_name, email, role) "
            "VALUES ($1, $2, 'x', $3, $4, 'staff')",
            f"u{i}",
            f"{i:010d}",
            name,
            f"u{i}@x.example",
        )
    query = build_query(MODEL, ["username", "last_name"], [], ["last_name"])
    assert 'ORDER BY "public"."users_user"."last_name"' in query.csv_sql
    stored_order = [r["username"] for r in await conn.fetch(query.sql)]
    csv_order = [r["username"] for r in await conn.fetch(query.csv_sql)]
    assert csv_order == stored_order
    neutralised = {r["username"]: r["last_name"] for r in await conn.fetch(query.csv_sql)}
    assert (neutralised["u0"], neutralised["u2"], neutralised["u3"]) == ("'\tb", "'=c", "d")
    # without formula escapes (files for programs) the CSV form is the stored text
    plain = build_query(MODEL, ["username", "last_name"], [], ["last_name"], escape_formulas=False)
    kept = {r["username"]: r["last_name"] for r in await conn.fetch(plain.csv_sql)}
    assert [kept[f"u{i}"] for i in range(len(names))] == names
