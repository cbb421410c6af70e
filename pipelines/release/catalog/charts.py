"""The numbers behind the catalog page's charts, computed from the latest release's tables with pyarrow.

Every function takes the tables by name and returns a :class:`~pipelines.release.catalog.svg.Series`, or None when the
release lacks the table the chart needs (the page then says so instead of drawing an empty chart).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.fold.tables import DIVISIONS, ELECTIONS, OBSERVATIONS, PARTIES, SEATS, STATION_TURNOUT
from pipelines.release.catalog.contests import election_label, labels_of, ranked_votes
from pipelines.release.catalog.contests import plain as _plain
from pipelines.release.catalog.svg import Series

# A municipality-level turnout table, if a later fold adds one, is preferred over summing stations.
MUNICIPALITY_TURNOUT = "municipality_turnout"
TURNOUT_ID, INCIDENTS_ID, TIMELINE_ID, SEATS_ID = "turnout", "incidents", "incidents-over-time", "seats"
# How many municipalities the turnout chart draws and its data table lists: every publish uploads the page again,
# and listing all of them made it 0.65 MB at a million stations (about 10,000 municipalities).
MAX_MUNICIPALITY_BARS = 40
INDEPENDENT = "Independent"
# Incidents of an election day are counted per hour; over a longer span, per day.
_HOURLY_SPAN = timedelta(days=2)


def _names(tables: dict[str, pa.Table], table: str, id_column: str, ids: pa.Array) -> dict[str, str]:
    """id -> display name of ``ids`` from a reference table (empty when the release lacks it)."""
    t = tables.get(table)
    if t is None or "name" not in t.column_names:
        return {}
    # Only the rows asked for: divisions holds every polling station (a million rows), charts name a few.
    t = t.filter(pc.is_in(_plain(t.column(id_column)), value_set=pc.cast(ids, pa.string())))
    return dict(zip(_plain(t.column(id_column)).to_pylist(), t.column("name").to_pylist()))


def _percent(value: float) -> str:
    return f"{value:.1%}"


def elections_label(tables: dict[str, pa.Table]) -> str:
    """The release's elections as chart titles name them ("<name> (<date>)", by date), or "" without them."""
    t = tables.get(ELECTIONS)
    if t is None:
        return ""
    rows = sorted(t.to_pylist(), key=lambda r: (r.get("date") is None, r.get("date"), r["name"]))
    return "; ".join(str(election_label(r)) for r in rows)


def _titled(title: str, tables: dict[str, pa.Table]) -> str:
    label = elections_label(tables)
    return f"{title}: {label}" if label else title


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """A string column as (an integer code per row, the values coded): equal values, equal codes; a null's code
    is the number of values."""
    encoded = pc.dictionary_encode(column)  # the chunks share one dictionary
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    values = chunks[-1].dictionary if chunks else pa.array([], pa.string())
    codes = [c.indices.fill_null(len(values)).to_numpy() for c in chunks]
    return (np.concatenate(codes) if codes else np.zeros(0, np.int32)).astype(np.int64), values


def _max(values: pa.ChunkedArray, order: np.ndarray, starts: np.ndarray) -> pa.Array:
    """The largest known value of each group of ``order``'s rows starting at ``starts``; null when none is."""
    low = np.iinfo(np.int64).min  # stands for null: no count of voters or ballots is that low
    sorted_values = pc.fill_null(values, low).to_numpy().astype(np.int64)[order]
    largest = np.maximum.reduceat(sorted_values, starts) if len(starts) else np.zeros(0, np.int64)
    return pa.array(largest, pa.int64(), mask=largest == low)


def _station_figures(source: pa.Table) -> pa.Table:
    """One row per station (and municipality) with both figures known (turnout is computed only over units where
    both are), in the order the stations first appear.

    Since the contest model a station has a turnout row per contest, each repeating the station's registered
    voters and ballots cast; summing those rows would count a station once per contest. Grouped on integer codes
    with numpy: at a million stations Arrow's group_by on the two id columns held half a gigabyte.
    """
    stations, _ = _codes(_plain(source.column("station_id")))
    places, names = _codes(_plain(source.column("municipality_id")))
    key = stations * (len(names) + 1) + places
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.diff(key[order], prepend=-1) != 0) if len(key) else np.zeros(0, np.int64)
    first = order[starts]  # each group's first row: stable, so the earliest
    place = places[first]
    t = pa.table({"municipality_id": names.take(pa.array(place, pa.int64(), mask=place == len(names))),
                  "registered_voters": _max(source.column("registered_voters"), order, starts),
                  "ballots_cast": _max(source.column("ballots_cast"), order, starts)})
    t = t.take(pa.array(np.argsort(first, kind="stable")))
    return t.filter(pc.and_(pc.is_valid(t.column("registered_voters")), pc.is_valid(t.column("ballots_cast"))))


def turnout_by_municipality(tables: dict[str, pa.Table]) -> Series | None:
    """Turnout (ballots cast / registered voters) per municipality, highest first."""
    named = MUNICIPALITY_TURNOUT if tables.get(MUNICIPALITY_TURNOUT) is not None else STATION_TURNOUT
    source = tables.get(named)
    if source is None:
        return None
    t = _station_figures(source) if "station_id" in source.column_names else source
    grouped = t.group_by("municipality_id").aggregate([("registered_voters", "sum"), ("ballots_cast", "sum")])
    registered = grouped.column("registered_voters_sum").to_pylist()
    cast = grouped.column("ballots_cast_sum").to_pylist()
    names = _names(tables, DIVISIONS, "division_id", grouped.column("municipality_id"))
    rows = sorted(
        ((names.get(m) or m or "unknown", (c or 0) / r if r else 0.0)
         for m, r, c in zip(grouped.column("municipality_id").to_pylist(), registered, cast)),
        key=lambda row: (-row[1], row[0]))
    shown = min(len(rows), MAX_MUNICIPALITY_BARS)
    note = (f"The {shown} municipalities with the highest turnout of {len(rows):,} are drawn and listed; the "
            f"{named} table has all their figures." if len(rows) > shown else "")
    return Series(TURNOUT_ID, _titled("Turnout by municipality", tables),
                  "Ballots cast as a share of registered voters in each municipality, summed over the polling "
                  "stations that reported both figures.",
                  "Municipality", "Turnout (ballots cast / registered voters)",
                  [r[0] for r in rows], [r[1] for r in rows], _percent, note, listed=shown)


def seats_by_party(tables: dict[str, pa.Table]) -> Series | None:
    """Council seats won per party over all municipalities (one row of ``seats`` per elected member)."""
    seats = tables.get(SEATS)
    if seats is None:
        return None
    party = pc.fill_null(_plain(seats.column("party_id")), "")
    counted = pc.value_counts(party)
    counts = counted.to_pylist()
    names = _names(tables, PARTIES, "party_id", counted.field("values"))
    rows = sorted(((names.get(c["values"]) or c["values"] or INDEPENDENT, float(c["counts"])) for c in counts),
                  key=lambda row: (-row[1], row[0]))
    return Series(SEATS_ID, _titled("Seats by party", tables), "Seats won by each party, over all divisions.",
                  "Party", "Seats won", [r[0] for r in rows], [r[1] for r in rows])


def incidents_by_category(tables: dict[str, pa.Table]) -> Series | None:
    """Incident reports per category (each report counted once, whatever its status)."""
    observations = tables.get(OBSERVATIONS)
    if observations is None:
        return None
    counts = pc.value_counts(pc.fill_null(observations.column("category"), "UNKNOWN")).to_pylist()
    rows = sorted(((c["values"].replace("_", " ").lower(), float(c["counts"])) for c in counts),
                  key=lambda row: (-row[1], row[0]))
    return Series(INCIDENTS_ID, _titled("Incidents by category", tables),
                  "Number of incident reports in each category.",
                  "Category", "Incident reports", [r[0] for r in rows], [r[1] for r in rows])


def incidents_over_time(tables: dict[str, pa.Table]) -> Series | None:
    """Incident reports per hour (per day when they span more than two days) of when they occurred (UTC)."""
    observations = tables.get(OBSERVATIONS)
    if observations is None:
        return None
    occurred = observations.column("occurred_at").drop_null()
    if len(occurred) == 0:
        return Series(TIMELINE_ID, _titled("Incidents over time", tables), "Incident reports by when they occurred.",
                      "Time (UTC)", "Incident reports", [], [])
    span = pc.max(occurred).as_py() - pc.min(occurred).as_py()
    unit, fmt = ("hour", "%Y-%m-%d %H:00") if span <= _HOURLY_SPAN else ("day", "%Y-%m-%d")
    buckets = pc.floor_temporal(occurred, unit=unit)
    counts = {c["values"]: c["counts"] for c in pc.value_counts(buckets).to_pylist()}
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    # Every bucket between the first and last, so quiet hours show as gaps, not as a shorter axis.
    labels, values = [], []
    current, last = min(counts), max(counts)
    while current <= last:
        labels.append(current.strftime(fmt))
        values.append(float(counts.get(current, 0)))
        current += step
    return Series(TIMELINE_ID, _titled("Incidents over time", tables),
                  f"Number of incident reports per {unit} of when they occurred (UTC).",
                  f"Time (UTC, per {unit})", "Incident reports", labels, values)


def contest_chart_id(contest_id: str) -> str:
    """The figure id of a contest's chart (contest ids hold dots; ids and anchors keep to [a-z0-9-])."""
    return "contest-" + re.sub(r"[^a-z0-9]+", "-", contest_id.lower()).strip("-")


def contest_results(tables: dict[str, pa.Table], contest: dict[str, Any]) -> Series:
    """Votes per selection of one contest (a ``catalog.json`` contest entry), most votes first."""
    cid = contest["contest_id"]
    votes = ranked_votes(tables, [cid])
    where = f" in {contest['election']}" if contest.get("election") else ""
    reporting = contest.get("stations_reporting")
    over = f", summed over {reporting:,} reporting polling stations" if reporting is not None else ""
    return Series(contest_chart_id(cid), f"{contest['name']}: votes by selection",
                  f"Votes for each choice in {contest['name']}{where}{over}.", "Selection", "Votes",
                  labels_of(tables, votes).to_pylist(), [float(n) for n in votes.column("votes").to_pylist()])
