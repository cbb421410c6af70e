"""The catalog's per-contest section: for the contests of the latest release with the most votes (at most
``MAX_LISTED_CONTESTS``), their outcome, margin, reporting progress and leading selections, from ``contests``,
``contest_summary`` and the contest-level rows of ``contest_results`` (docs/contests.md, "Tables"). Figures the
tables hold as null stay null here; how many contests there are is said beside them, and ``contest_summary`` holds
every one.

Ranking, naming and grouping run in pyarrow over whole columns; only what the catalog lists becomes Python
objects. A million stations make 10,000 contests and 125,000 selections, and turning whole tables into Python
rows (once per charted contest) took most of a publish's catalog time.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ELECTIONS, CANDIDATES, PARTIES = "elections", "candidates", "parties"
CONTESTS, SELECTIONS, RESULTS, SUMMARY = "contests", "contest_selections", "contest_results", "contest_summary"
NEEDED = (CONTESTS, SUMMARY, RESULTS)
# How many selections per contest catalog.json lists (the chart draws them all).
TOP_SELECTIONS = 5
# How many contests catalog.json lists, and the page shows. A million stations elect 10,000 councils: listing each
# made catalog.json 20 MB, uploaded again by every publish however few stations it changed.
MAX_LISTED_CONTESTS = 100
# The order of the listed contests, as catalog.json states it.
LISTING_ORDER = "total_votes descending (contests without a total last), then contest_id"
# Contests decided by the most voted option, not by seats.
OPTION_KINDS = ("BALLOT_MEASURE", "RETENTION")
_SUMMARY_COLUMNS = ("contest_id", "total_votes", "winners", "margin", "stations_reporting", "stations_expected")
_PAIR = ("contest_id", "selection_id")


def plain(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Dictionary columns decoded to their values (group_by keys and joins want plain types)."""
    return pc.cast(column, column.type.value_type) if pa.types.is_dictionary(column.type) else column


def _text(table: pa.Table, name: str) -> pa.ChunkedArray | pa.Array:
    """A column as plain strings, or nulls when the table lacks it (tables built by hand may)."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    return pc.cast(plain(table.column(name)), pa.string())


def _or(value: pa.ChunkedArray | pa.Array, fallback: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """``value or fallback`` per row: an empty or null string falls through, as in Python."""
    return pc.if_else(pc.fill_null(pc.not_equal(value, ""), False), value, fallback)


def election_label(election: dict[str, Any] | None) -> str | None:
    """"<name> (<day month year>)" of an election row."""
    if election is None:
        return None
    when = election.get("date")
    return f"{election['name']} ({when.day} {when:%B %Y})" if when else str(election["name"])


def _names(tables: dict[str, pa.Table], ids: pa.ChunkedArray | pa.Array) -> pa.Table:
    """``selection_id``, ``_name``: the candidate's or party's name of each of ``ids`` that has one."""
    parts = [pa.table({"selection_id": _text(t, id_column), "_name": _text(t, "name")})
             for t, id_column in ((tables.get(CANDIDATES), "candidate_id"), (tables.get(PARTIES), "party_id"))
             if t is not None]
    if not parts:
        return pa.table({"selection_id": pa.array([], pa.string()), "_name": pa.array([], pa.string())})
    names = pa.concat_tables(parts)
    names = names.filter(pc.is_in(names.column("selection_id"), value_set=pc.unique(ids)))
    # One row per id, the last one: a party's name wins over a candidate's of the same id.
    last = names.group_by("selection_id", use_threads=False).aggregate(
        [("_name", "last", pc.ScalarAggregateOptions(skip_nulls=False))])
    return last.select(["selection_id", "_name_last"]).rename_columns(["selection_id", "_name"])


def labels_of(tables: dict[str, pa.Table], pairs: pa.Table,
              named: pa.ChunkedArray | pa.Array | None = None) -> pa.ChunkedArray | pa.Array:
    """What to call each (``contest_id``, ``selection_id``) row of ``pairs``, in their order: a declared
    selection's ballot label, else the candidate's or party's name, else the selection id.

    Args:
        named: per row, whether an undeclared selection may be called by its candidate's or party's name
            (only those with results may); None: all may.
    """
    keyed = pa.table({"contest_id": _text(pairs, "contest_id"), "selection_id": _text(pairs, "selection_id"),
                      "_row": pa.array(np.arange(pairs.num_rows))})
    declared = tables.get(SELECTIONS)
    if declared is not None:
        declared = pa.table({"contest_id": _text(declared, "contest_id"),
                             "selection_id": _text(declared, "selection_id"), "_label": _text(declared, "label")})
        # Only the contests asked about: a chart asks about one contest of thousands.
        declared = declared.filter(pc.is_in(declared.column("contest_id"),
                                            value_set=pc.unique(keyed.column("contest_id"))))
        declared = declared.append_column("_declared", pa.array(np.ones(declared.num_rows, dtype=bool)))
        keyed = keyed.join(declared, list(_PAIR), join_type="left outer")
    else:
        keyed = keyed.append_column("_label", pa.nulls(keyed.num_rows, pa.string())).append_column(
            "_declared", pa.nulls(keyed.num_rows, pa.bool_()))
    keyed = keyed.join(_names(tables, keyed.column("selection_id")), "selection_id", join_type="left outer")
    keyed = keyed.sort_by("_row")  # joins do not keep the order
    selection = keyed.column("selection_id")
    by_name = _or(keyed.column("_name"), selection)
    undeclared = by_name if named is None else pc.if_else(named, by_name, selection)
    return pc.if_else(pc.fill_null(keyed.column("_declared"), False), _or(keyed.column("_label"), by_name),
                      undeclared)


def ranked_votes(tables: dict[str, pa.Table], contest_ids: list[str] | None = None) -> pa.Table:
    """The contest-level results with votes (of ``contest_ids``, or all): ``contest_id``, ``selection_id``,
    ``votes`` and ``rank`` (0 for the most votes), by contest id, then most votes first (ties by selection id)."""
    results = tables.get(RESULTS)
    if results is None:
        return pa.table({"contest_id": pa.array([], pa.string()), "selection_id": pa.array([], pa.string()),
                         "votes": pa.array([], pa.int64()), "rank": pa.array([], pa.int64())})
    t = pa.table({"contest_id": _text(results, "contest_id"), "selection_id": _text(results, "selection_id"),
                  "votes": results.column("votes")})
    keep = pc.and_(pc.fill_null(pc.equal(plain(results.column("level")), "contest"), False),
                   pc.is_valid(results.column("votes")))
    if contest_ids is not None:
        keep = pc.and_(keep, pc.is_in(t.column("contest_id"), value_set=pa.array(contest_ids, pa.string())))
    t = t.filter(keep).sort_by([("contest_id", "ascending"), ("votes", "descending"), ("selection_id", "ascending")])
    n = t.num_rows
    ids = t.column("contest_id")
    new_contest = np.ones(n, dtype=bool)
    if n > 1:
        new_contest[1:] = pc.fill_null(pc.not_equal(ids[1:], ids[:-1]), True).to_numpy()
    starts = np.flatnonzero(new_contest)
    rank = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
    return t.append_column("rank", pa.array(rank, pa.int64()))


def _winner_labels(tables: dict[str, pa.Table], summary: pa.Table) -> dict[tuple[str, str], str]:
    """(contest id, winner's selection id) -> label, for every winner in ``summary``."""
    if "winners" not in summary.column_names:
        return {}
    winners = summary.column("winners").combine_chunks()
    pairs = pa.table({"contest_id": pc.take(_text(summary, "contest_id"), pc.list_parent_indices(winners)),
                      "selection_id": pc.cast(pc.list_flatten(winners), pa.string())})
    if pairs.num_rows == 0:
        return {}
    # A winner that is neither declared nor in the results keeps its id (there is no row to name it by).
    in_results = pc.is_in(_pair_keys(pairs), value_set=pc.unique(_pair_keys(tables[RESULTS])))
    labels = labels_of(tables, pairs, named=in_results)
    return dict(zip(zip(pairs.column("contest_id").to_pylist(), pairs.column("selection_id").to_pylist()),
                    labels.to_pylist()))


def _pair_keys(pairs: pa.Table) -> pa.ChunkedArray | pa.Array:
    """One string per (contest, selection) pair (a unit separator between them), to test membership."""
    return pc.binary_join_element_wise(_text(pairs, "contest_id"), _text(pairs, "selection_id"), "\x1f")


def contest_count(tables: dict[str, pa.Table]) -> int:
    """How many contests the release has (0 without the contest tables the section needs)."""
    return 0 if any(n not in tables for n in NEEDED) else tables[CONTESTS].num_rows


def listed_ids(tables: dict[str, pa.Table], limit: int = MAX_LISTED_CONTESTS) -> list[str]:
    """The ids of the ``limit`` contests to list, in ``LISTING_ORDER``."""
    summary = tables[SUMMARY]
    totals = pa.table({"contest_id": _text(summary, "contest_id"),
                       "total_votes": summary.column("total_votes") if "total_votes" in summary.column_names
                       else pa.nulls(summary.num_rows, pa.int64())})
    keyed = pa.table({"contest_id": _text(tables[CONTESTS], "contest_id")}).join(totals, "contest_id",
                                                                                   join_type="left outer")
    order = pc.sort_indices(keyed, sort_keys=[("total_votes", "descending", "at_end"),
                                              ("contest_id", "ascending", "at_end")])
    return keyed.column("contest_id").take(order[:limit]).to_pylist()


def _only(tables: dict[str, pa.Table], ids: list[str]) -> dict[str, pa.Table]:
    """The tables with the rows of the contests ``ids`` only (the others are neither ranked nor named)."""
    wanted = pa.array(ids, pa.string())
    return {**tables, **{n: tables[n].filter(pc.is_in(_text(tables[n], "contest_id"), value_set=wanted))
                         for n in (CONTESTS, SUMMARY, RESULTS)}}


def contest_sections(tables: dict[str, pa.Table], limit: int = MAX_LISTED_CONTESTS) -> list[dict[str, Any]]:
    """One entry per listed contest (:func:`listed_ids`, in that order); empty when the release lacks the contest
    tables."""
    if any(n not in tables for n in NEEDED):
        return []
    ids = listed_ids(tables, limit)
    position = {cid: i for i, cid in enumerate(ids)}
    tables = _only(tables, ids)
    elections = {r["election_id"]: r for r in tables[ELECTIONS].to_pylist()} if ELECTIONS in tables else {}
    summary = tables[SUMMARY]
    summaries = {r["contest_id"]: r for r in summary.select(
        [c for c in _SUMMARY_COLUMNS if c in summary.column_names]).to_pylist()}
    winner_labels = _winner_labels(tables, summary)
    votes = ranked_votes(tables)
    per_contest = votes.group_by("contest_id").aggregate([("votes", "count")])
    counts = dict(zip(per_contest.column("contest_id").to_pylist(), per_contest.column("votes_count").to_pylist()))
    top = votes.filter(pc.less(votes.column("rank"), TOP_SELECTIONS))
    top = top.append_column("label", labels_of(tables, top))
    leading: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in top.to_pylist():
        leading[r["contest_id"]].append(r)
    contests = tables[CONTESTS]
    columns = [c for c in ("contest_id", "election_id", "name", "kind", "office") if c in contests.column_names]
    rows = sorted(pa.table({c: plain(contests.column(c)) for c in columns}).to_pylist(),
                  key=lambda r: position[r["contest_id"]])
    out = []
    for c in rows:
        cid = c["contest_id"]
        s = summaries.get(cid) or {}
        total = s.get("total_votes")
        winners = s.get("winners")
        out.append({
            "contest_id": cid, "election_id": c["election_id"],
            "election": election_label(elections.get(c["election_id"])),
            "name": c.get("name") or cid, "kind": c.get("kind"), "office": c.get("office"),
            "decided_by": "option" if c.get("kind") in OPTION_KINDS else "seats",
            "winners": None if winners is None else [{"selection_id": w, "label": winner_labels.get((cid, w), w)}
                                                    for w in winners],
            "margin": s.get("margin"),
            "stations_reporting": s.get("stations_reporting"), "stations_expected": s.get("stations_expected"),
            "total_votes": total, "selections": counts.get(cid, 0),
            "top_selections": [{"selection_id": t["selection_id"], "label": t["label"], "votes": t["votes"],
                                "share": t["votes"] / total if total else None} for t in leading.get(cid, [])],
        })
    return out
