"""Expected per-county vote sums of OpenElections files, from :func:`pipelines.ingest.openelections.totals` (a
csv-module-only reading) keyed by the ids docs/contests.md prescribes, spelled out here again on purpose."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from pipelines.ingest import openelections as oe

Key = tuple[str, str, str]  # contest id, county division id, selection id (or a pseudo row's kind)
PSEUDO = {"over_votes": "overvotes", "under_votes": "undervotes", "write_ins": "write_ins"}


def _seg(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _ocd(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "_", text.strip().lower()).strip("_")


def ids(path: Path, office: str, district: str | None, county: str, candidate: str | None,
        party: str | None = None) -> Key:
    """(contest id, county id, selection id) of a row, by the documented rules (``party:*`` for any party)."""
    name = oe.parse_filename(path)
    words = [w for w in re.split(r"_+", name.election_type or "") if w]
    date = name.date.isoformat() if name.date else ""
    prefix = f"{words[0]}.us.{name.state}" + "".join(f".{w}" for w in words[1:])
    parts = [_seg(re.split(r"<br\s*/?>", office, flags=re.I)[0])] + ([f"d-{_seg(district)}"] if district else [])
    if "primary" in words and party:
        parts.append(_seg(party))
    contest = f"{prefix}.{'.'.join(parts)}.{date}"
    county_id = f"ocd-division/country:us/state:{name.state}/county:{_ocd(county)}"
    kind = oe.classify(office, candidate)
    if kind != "selection":
        return contest, county_id, kind
    if candidate is None:  # straight-party rows: oe.totals keys them by candidate (None), not by party
        return contest, county_id, "party:*"
    if _seg(candidate) in ("yes", "no", "for", "against"):
        return contest, county_id, f"option:{_seg(candidate)}"
    return contest, county_id, f"candidate:{contest}.{_seg(candidate.split(' / ')[0])}"


def _total_row(precinct: str | None) -> bool:
    return precinct is None or re.sub(r"[^a-z]", "", precinct.lower()) in ("total", "totals")


def expected_votes(path: Path) -> tuple[dict[Key, int], dict[Key, int]]:
    """Per (contest, county, selection): the votes of the file's precinct rows, and of its county-total rows.

    ``oe.totals`` adds both (it knows nothing of total rows), so the two are what it adds up, split by the rows'
    precinct cell as :func:`pipelines.ingest.openelections.read` gives it. Pseudo-office rows are left out;
    pseudo-candidate rows are keyed by their kind.
    """
    party_of = {}
    totals_rows: dict[Key, int] = defaultdict(int)
    for row in oe.read(path).rows:
        party_of[(row.office, row.district, row.county, row.candidate)] = row.party
        if _total_row(row.precinct) and row.votes is not None and row.kind in ("selection", *PSEUDO):
            totals_rows[ids(path, row.office, row.district, row.county or "", row.candidate, row.party)] += row.votes
    all_rows: dict[Key, int] = defaultdict(int)
    for (office, district, county, candidate), votes in oe.totals(path).items():
        if oe.classify(office, candidate) not in ("selection", *PSEUDO):
            continue
        party = party_of.get((office, district, county, candidate))
        all_rows[ids(path, office, district, county or "", candidate, party)] += votes
    precincts = {k: v - totals_rows.get(k, 0) for k, v in all_rows.items()}
    return precincts, dict(totals_rows)
