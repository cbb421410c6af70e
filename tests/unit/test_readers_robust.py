"""Any JSON value in any field is a rejection with a reason, never a crash: every top-level and nested field of
real events is replaced by values of every JSON type, and each result must be Parsed or Rejected."""

from __future__ import annotations

import copy
import json

import pytest

from pipelines.generator.synth import synthesize
from pipelines.ingest.readers import Parsed, Rejected, parse_object

WEIRD = [[1], {"a": 1}, 1.5, True, None, -3, "", [{"a": [1]}]]


def _mutations(obj: dict):
    for key, value in obj.items():
        for weird in WEIRD:
            yield key, {**copy.deepcopy(obj), key: weird}
        nested = value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else value
        if isinstance(nested, dict):
            for inner in nested:
                for weird in WEIRD:
                    mutated = copy.deepcopy(obj)
                    target = mutated[key][0] if isinstance(mutated[key], list) else mutated[key]
                    target[inner] = weird
                    yield f"{key}.{inner}", mutated


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, stations=3, seed=4)
    seen: dict[str, str] = {}
    for name in ("reference.jsonl", "results.jsonl", "observations.jsonl", "news.jsonl"):
        for line in (out / name).read_text().splitlines():
            seen.setdefault(json.loads(line)["type"], line)  # one line per record type
    return list(seen.values())


def test_every_field_of_every_type_survives_every_json_type(lines):
    assert len(lines) >= 6
    rejected = 0
    for line in lines:
        for where, mutated in _mutations(json.loads(line)):
            result = parse_object(mutated, file="f.jsonl", line=7, raw=line, kind=None, topic=None)
            assert isinstance(result, Parsed | Rejected), where
            if isinstance(result, Rejected):
                rejected += 1
                assert result.line == 7 and result.reason and result.reason_code, where
    assert rejected > 100
