"""Fault injection for generated files: one mutated copy of a good line per fault, failing for one reason.

A fault is always an *extra* line (or CSV station block) next to an intact original, so rejecting it never
cascades into other rejections (nothing it declares is referenced).
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from pipelines.contract import reasons
from pipelines.contract.ids import ID_KINDS

DUPLICATE = "duplicate"
CORRECTION = "correction"
RETRACTION = "retraction"
# fault name -> reason code the reader (or the reference check) must report.
REJECTING: dict[str, str] = {
    "malformed_json": reasons.MALFORMED_JSON,
    "malformed_csv": reasons.MALFORMED_CSV,
    "negative_count": reasons.NEGATIVE_COUNT,
    "invalid_id": reasons.INVALID_ID,
    "unknown_enum_symbol": reasons.UNKNOWN_ENUM_SYMBOL,
    "unknown_reference": reasons.UNKNOWN_REFERENCE,
    "wrong_type": reasons.WRONG_TYPE,
}
JSONL_FAULTS = ("malformed_json", "negative_count", "invalid_id", "unknown_enum_symbol", "unknown_reference",
                DUPLICATE)
CSV_FAULTS = ("malformed_csv", "negative_count", "invalid_id", "unknown_enum_symbol", "unknown_reference",
              "wrong_type")
_OWN_ID = {"ElectionDeclared": "election_id", "DivisionDeclared": "division_id", "PartyDeclared": "party_id",
           "CandidateRegistered": "candidate_id"}
_UNKNOWN: dict[str, str] = {
    "election_id": "local.zz.1999-01-01",
    "division_id": "ocd-division/country:zz/unknown:x",
    "station_id": "ocd-division/country:zz/unknown:x",
    "municipality_id": "ocd-division/country:zz/unknown:x",
    "parent_id": "ocd-division/country:zz/unknown:x",
    "party_id": "party:unknown-x",
    "candidate_id": "candidate:unknown-x",
}


def mutate_json(fault: str, obj: dict[str, Any], text: str) -> str | None:
    """The faulty line for ``fault`` made from a good event, or None if this event cannot carry that fault."""
    if fault == DUPLICATE:
        return text
    if fault == "malformed_json":
        return text[: max(1, len(text) // 2)]
    bad = copy.deepcopy(obj)
    if fault == "unknown_enum_symbol":
        if "source" not in bad:
            return None
        bad["source"]["kind"] = "NOT_A_SOURCE_KIND"
    elif fault == "negative_count":
        field = next((k for k, v in bad.items() if type(v) is int and v >= 0), None)
        if field is None:
            return None
        bad[field] = -(bad[field] + 1)
    elif fault == "invalid_id":
        field = next((k for k, v in bad.items() if k in ID_KINDS and isinstance(v, str)), None)
        if field is None:
            return None
        bad[field] = f"Not A Valid Id {bad[field]}"
    elif fault == "unknown_reference":
        own = _OWN_ID.get(obj.get("type", ""))
        # Another election would fail the contest's election match first (contest_election_mismatch).
        skip = {own, "election_id"} if obj.get("contest_id") else {own}
        field = next((k for k in _UNKNOWN if k not in skip and isinstance(bad.get(k), str)), None)
        if field is None:
            return None
        bad[field] = _UNKNOWN[field]
    else:
        raise ValueError(f"unknown JSON fault {fault!r}")
    return json.dumps(bad, ensure_ascii=False, separators=(",", ":"))


def mutate_rows(fault: str, rows: list[list[str]], rng: random.Random) -> tuple[list[list[str]], int]:
    """A faulty copy of one station's CSV rows and the index of the row the reader must blame."""
    bad = [list(r) for r in rows]
    row = rng.randrange(len(bad))
    if fault == "malformed_csv":
        bad[row].append("extra")
    elif fault == "negative_count":
        bad[row][9] = str(-1 - int(bad[row][9]))
    elif fault == "wrong_type":
        bad[row][9] = "many"
    elif fault == "invalid_id":
        bad[row][8] = f"Not A Valid Id {bad[row][8]}"
    elif fault in ("unknown_enum_symbol", "unknown_reference"):
        # Station columns must agree across rows, so change them on every row; the first row is blamed.
        column, value = (3, "COUNTED") if fault == "unknown_enum_symbol" else (2, _UNKNOWN["municipality_id"])
        for r in bad:
            r[column] = value
        row = 0
    else:
        raise ValueError(f"unknown CSV fault {fault!r}")
    return bad, row
