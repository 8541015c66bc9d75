"""How the runner words what it tells the user."""

from __future__ import annotations

import pytest

from services.importer.runner import _percent, _storable


@pytest.mark.parametrize(
    ("share", "shown"),
    [
        (100 / 35_000, "0.0029"),
        (12.3456, "12.35"),
        (0.0, "0.00"),
        (0.01, "0.01"),
        (100.0, "100.00"),
    ],
)
def test_a_small_share_of_bad_rows_is_not_shown_as_zero(share: float, shown: str) -> None:
    # "0.00% of the 35,000 rows read were rejected, more than the 0% allowed" (one bad row)
    assert _percent(share) == shown


def test_text_postgresql_cannot_hold_is_shown_escaped() -> None:
    assert _storable("a\x00b") == "a\\x00b"
    assert _storable("x\ud800y") == "x\\ud800y"
    assert _storable("ok نام") == "ok نام"
    assert _storable(None) is None
