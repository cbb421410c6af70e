"""House style: no function over 60 lines without a comment saying why it is long (a `# Long:` comment in its
body), across pipelines/, dagster_project/ and infra/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 60


def _long_functions_without_a_reason() -> list[str]:
    found = []
    for path in sorted(p for d in ("pipelines", "dagster_project", "infra") for p in (ROOT / d).rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                body = lines[node.lineno - 1:node.end_lineno]
                if length > LIMIT and not any(line.strip().startswith("# Long:") for line in body):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_every_long_function_says_why():
    assert _long_functions_without_a_reason() == []
