"""The test tree itself: pytest imports test modules by basename (no packages), so two test
files of one name in tests/unit and tests/integration break collection of the whole suite, and
only a run of both directories shows it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_basename() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "golden" not in p.parts)
    assert names, "no test modules found"
    assert [n for n, count in names.items() if count > 1] == []
