"""The catalog's per-contest section: for each contest of the latest release, its outcome, margin, reporting
progress and leading selections, from ``contests``, ``contest_summary`` and the contest-level rows of
``contest_results`` (docs/contests.md, "Tables"). Figures the tables hold as null stay null here.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa

ELECTIONS, CANDIDATES, PARTIES = "elections", "candidates", "parties"
CONTESTS, SELECTIONS, RESULTS, SUMMARY = "contests", "contest_selections", "contest_results", "contest_summary"
NEEDED = (CONTESTS, SUMMARY, RESULTS)
# How many selections per contest catalog.json lists (the chart draws them all).
TOP_SELECTIONS = 5
# Contests decided by the most voted option, not by seats.
OPTION_KINDS = ("BALLOT_MEASURE", "RETENTION")


def _rows(tables: dict[str, pa.Table], name: str) -> list[dict[str, Any]]:
    table = tables.get(name)
    return [] if table is None else table.to_pylist()


def selection_labels(tables: dict[str, pa.Table]) -> dict[tuple[str, str], str]:
    """(contest id, selection id) -> what to call it: the ballot label, else the candidate's or party's name."""
    names = {r["candidate_id"]: r["name"] for r in _rows(tables, CANDIDATES)}
    names.update({r["party_id"]: r["name"] for r in _rows(tables, PARTIES)})
    labels = {(r["contest_id"], r["selection_id"]): r.get("label") or names.get(r["selection_id"])
              or r["selection_id"] for r in _rows(tables, SELECTIONS)}
    for r in _rows(tables, RESULTS):
        key = (r["contest_id"], r["selection_id"])
        labels.setdefault(key, names.get(r["selection_id"]) or r["selection_id"])
    return labels


def election_label(election: dict[str, Any] | None) -> str | None:
    """"<name> (<day month year>)" of an election row."""
    if election is None:
        return None
    when = election.get("date")
    return f"{election['name']} ({when.day} {when:%B %Y})" if when else str(election["name"])


def contest_votes(tables: dict[str, pa.Table]) -> dict[str, list[tuple[str, int]]]:
    """contest id -> [(selection id, votes)] at level ``contest``, most votes first (ties by id)."""
    votes: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for r in _rows(tables, RESULTS):
        if r["level"] == "contest" and r.get("votes") is not None:
            votes[r["contest_id"]].append((r["selection_id"], r["votes"]))
    return {c: sorted(v, key=lambda sv: (-sv[1], sv[0])) for c, v in votes.items()}


def contest_sections(tables: dict[str, pa.Table]) -> list[dict[str, Any]]:
    """One entry per contest (by election, then contest id); empty when the release lacks the contest tables."""
    if any(n not in tables for n in NEEDED):
        return []
    elections = {r["election_id"]: r for r in _rows(tables, ELECTIONS)}
    summaries = {r["contest_id"]: r for r in _rows(tables, SUMMARY)}
    labels = selection_labels(tables)
    votes = contest_votes(tables)
    out = []
    for c in sorted(_rows(tables, CONTESTS), key=lambda r: (r["election_id"], r["contest_id"])):
        cid = c["contest_id"]
        s = summaries.get(cid) or {}
        total = s.get("total_votes")
        top = [{"selection_id": sid, "label": labels.get((cid, sid), sid), "votes": n,
                "share": n / total if total else None} for sid, n in votes.get(cid, [])[:TOP_SELECTIONS]]
        winners = s.get("winners")
        out.append({
            "contest_id": cid, "election_id": c["election_id"],
            "election": election_label(elections.get(c["election_id"])),
            "name": c.get("name") or cid, "kind": c.get("kind"), "office": c.get("office"),
            "decided_by": "option" if c.get("kind") in OPTION_KINDS else "seats",
            "winners": None if winners is None else [{"selection_id": w, "label": labels.get((cid, w), w)}
                                                    for w in winners],
            "margin": s.get("margin"),
            "stations_reporting": s.get("stations_reporting"), "stations_expected": s.get("stations_expected"),
            "total_votes": total, "selections": len(votes.get(cid, [])), "top_selections": top,
        })
    return out
