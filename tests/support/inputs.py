"""Input records as ingest reads them (JSON Lines objects, CSV tally rows), shared by the reader, hostile-input
and fuzz tests."""

from __future__ import annotations

import json
from typing import Any

E = "local.az.2025-01-29"
AZ = "ocd-division/country:az"
ST = f"{AZ}/constituency:23/polling_station:32"
MU = f"{AZ}/region:baku/municipality:sabail"
SRC = {"organisation": "CEC", "kind": "ELECTION_AUTHORITY", "url": None}
T = "2025-01-29T20:00:00+04:00"
SUMMARY = {"type": "DivisionSummary", "occurred_at": T, "source": SRC, "election_id": E,
           "division_id": "ocd-division/country:az/region:baku",
           "figures": [{"metric": "TURNOUT", "value": 0.5, "qualifier": "EXACT", "note": None}]}


def tally(**over: Any) -> dict[str, Any]:
    """A valid StationTally object (four candidates, 38 valid votes); ``over`` replaces fields."""
    obj = {"type": "StationTally", "occurred_at": T, "source": SRC, "election_id": E, "station_id": ST,
           "municipality_id": MU, "status": "FINAL", "registered_voters": 100, "ballots_cast": 40,
           "valid_ballots": 38, "invalid_ballots": 2,
           "votes": [{"candidate_id": f"candidate:c{i}", "votes": 9 + (i == 3) * 2} for i in range(4)]}
    obj.update(over)
    return obj


def csv_rows(votes: list[str]) -> list[str]:
    """CSV rows of one station's tally, one per candidate with the given vote cells."""
    return [",".join([E, ST, MU, "FINAL", "100", "40", "38", "2", f"candidate:c{i}", v, T, "CEC",
                      "ELECTION_AUTHORITY", ""]) for i, v in enumerate(votes)]


def summary_with(value: str) -> bytes:
    """A DivisionSummary line whose TURNOUT value is the raw JSON text ``value``."""
    return json.dumps(SUMMARY).replace('"value": 0.5', f'"value": {value}').encode()
