"""Tests share helpers only through tests/support/: no test module imports another test module or conftest."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
FORBIDDEN = re.compile(r"^\s*(from|import)\s+tests\.(unit|integration|e2e|conftest)\b", re.M)


def test_no_test_imports_another_test_module_or_conftest():
    offenders = [str(p.relative_to(TESTS)) for p in TESTS.rglob("*.py") if FORBIDDEN.search(p.read_text())]
    assert offenders == []
