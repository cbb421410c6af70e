"""The document's ``Contest`` array: each contest's NIST class, the fields NIST requires (stand-ins noted), its
office, reporting progress, selections and counts, put in document order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.release import cdf_counts, cdf_selections
from pipelines.release import cdf_json as js
from pipelines.release import cdf_report as rp
from pipelines.release import cdf_vocab as v


def _contest_class(contest: rp.Row, kinds: set[Any]) -> str:
    """The NIST class of a contest: by kind, or for OTHER (a v1 default contest) by what its selections are."""
    kind = contest.get("kind")
    if kind in v.CONTEST_TYPES:
        return v.CONTEST_TYPES[kind]
    if kinds and kinds <= {"PARTY"}:
        return v.PARTY_CONTEST
    if kinds and kinds <= {"OPTION"}:
        return v.MEASURE_CONTEST
    return v.CANDIDATE_CONTEST


def _required(report: rp.Report, contest: rp.Row, typ: str, people: list[str], out: dict[str, Any]) -> str:
    """Fill what NIST requires but the tables may lack, noting each stand-in; returns the final contest class.

    NIST requires VotesAllowed on a CandidateContest and a CandidateId on a RetentionContest; where the tables
    do not know them, the document says what it did instead in the report's Notes.
    """
    cid = contest["contest_id"]
    if typ == v.CANDIDATE_CONTEST:
        if contest.get("number_elected") is not None:
            out["NumberElected"] = contest["number_elected"]
        if contest.get("votes_allowed") is not None:
            out["VotesAllowed"] = contest["votes_allowed"]
        elif contest.get("number_elected") is not None:
            out["VotesAllowed"] = contest["number_elected"]
            report.notes.append(f"{cid}: VotesAllowed not published; set to NumberElected.")
        else:
            out["VotesAllowed"] = 1
            report.notes.append(f"{cid}: VotesAllowed and NumberElected not published; VotesAllowed set to 1 "
                                "because the format requires it.")
    elif typ == v.RETENTION_CONTEST:
        if len(people) == 1:
            out["CandidateId"] = people[0]
        else:
            typ = v.MEASURE_CONTEST
            out["Type"] = v.OTHER
            report.notes.append(f"{cid}: retention contest without one known candidate; exported as a "
                                "BallotMeasureContest.")
    return typ


def _what_selections_say(report: rp.Report, selections: pa.Table, contest_of: pa.Array
                         ) -> tuple[dict[str, set[Any]], dict[str, set[str]]]:
    """(kinds, candidates) of the selections of each contest whose class or required fields depend on them: the
    kinds for a contest of kind OTHER, the candidates for a retention contest."""
    kinds: dict[str, set[Any]] = {}
    people: dict[str, set[str]] = {}
    looked_at = [c["contest_id"] for c in report.contests if c.get("kind") not in v.CONTEST_TYPES
                 or v.CONTEST_TYPES[c["kind"]] == v.RETENTION_CONTEST]
    if looked_at:
        sub = selections.filter(pc.is_in(contest_of, value_set=pa.array(looked_at, js.TEXT)))
        for cid, kind, candidate in zip(*(sub[c].to_pylist() for c in ("contest_id", "kind", "candidate_id")),
                                        strict=True):
            kinds.setdefault(cid, set()).add(kind)
            if candidate:
                people.setdefault(cid, set()).add(candidate)
    return kinds, people


def _fields(report: rp.Report, contest: rp.Row, district: str, kinds: set[Any], people: list[str]
            ) -> dict[str, Any]:
    """A contest's members but ContestSelection and OtherCounts; its Office goes to ``report.offices``."""
    cid = contest["contest_id"]
    fields: dict[str, Any] = {}
    typ = _required(report, contest, _contest_class(contest, kinds), people, fields)
    office = contest.get("office")
    if office and typ in (v.CANDIDATE_CONTEST, v.RETENTION_CONTEST):
        office_id = f"{cid}#office"
        report.offices.append((office_id, rp.dumps({"@id": office_id, "@type": "ElectionResults.Office",
                                                    "ElectionDistrictId": district, "Name": rp.text(office)})))
        if typ == v.CANDIDATE_CONTEST:
            fields["OfficeIds"] = [office_id]
        else:
            fields["OfficeId"] = office_id
    summary = report.summary.get(cid) or {}
    if summary.get("stations_reporting") is not None:
        fields["SubUnitsReported"] = summary["stations_reporting"]
    if summary.get("stations_expected") is not None:
        fields["TotalSubUnits"] = summary["stations_expected"]
    fields.update({"@id": cid, "@type": typ, "ElectionDistrictId": district, "Name": contest.get("name") or cid})
    return fields


def _heads_and_tails(report: rp.Report, selections: pa.Table, contest_of: pa.Array) -> tuple[list[str], list[str]]:
    """Each contest's JSON before its selections (``,"ContestSelection":[`` ending it) and after them."""
    other_counts = cdf_counts.other_counts(report)
    runs = js.runs(contest_of)
    run_contests = contest_of.take(pa.array(runs[:-1], pa.int64())).to_pylist()
    end_of = dict(zip(run_contests, runs[1:].tolist(), strict=True))
    kinds, people = _what_selections_say(report, selections, contest_of)
    heads, tails = [], []
    retention_labels: list[tuple[str, int]] = []
    for i, contest in enumerate(report.contests):
        cid = contest["contest_id"]
        fields = _fields(report, contest, report.districts[i].as_py(), kinds.get(cid, set()),
                         sorted(people.get(cid, ())))
        if "CandidateId" in fields:
            # Named after the contest's selections and before the next contest's (ranks as in cdf_selections).
            retention_labels.append((fields["CandidateId"], (end_of[cid] << 20) - 1))
        # The sorted keys around ContestSelection (written by the pieces between head and tail) and OtherCounts
        # (JSON text already).
        head = rp.dumps({k: x for k, x in fields.items() if k < "ContestSelection"})
        heads.append(("," if i else "") + head[:-1] + ',"ContestSelection":[')
        middle = rp.dumps({k: x for k, x in fields.items() if "ContestSelection" < k < "OtherCounts"})
        end = rp.dumps({k: x for k, x in fields.items() if k > "OtherCounts"})
        other = other_counts.get(cid)
        tail = "]," + middle[1:-1] + (f',"OtherCounts":{other}' if other is not None else "")
        tails.append(tail + ("," + end[1:] if end != "{}" else "}"))
    if retention_labels:
        report.labels.append(pa.table({"person": pa.array([p for p, _ in retention_labels], js.TEXT),
                                       "label": pa.array([p for p, _ in retention_labels], js.TEXT),
                                       "rank": pa.array([r for _, r in retention_labels], pa.int64())}))
    return heads, tails


def contest_section(report: rp.Report) -> tuple[pa.Buffer, int]:
    """Every contest's JSON, in contest order and comma-separated, with its selections, counts and reporting
    progress; and how many selections it has (a later block's ballot-label ranks follow them: ``cdf_blocks``).

    The pieces (each contest's head and tail, each selection's head and tail, each count) are put in document
    order by one sort and one ``take``: the counts, most of the document's bytes, are copied once.
    """
    counts = cdf_counts.vote_counts(report)
    selections, selection_heads, has_counts, group_row = cdf_selections.selections(report, counts)
    contest_of = selections["contest_id"].combine_chunks()
    heads, tails = _heads_and_tails(report, selections, contest_of)
    # Document order: contest, then its selections, each with its counts; within a contest its head first and
    # its tail last.
    n_contests, n_selections, n_items = len(report.contests), selections.num_rows, len(counts.items)
    contest_at = pc.index_in(contest_of, value_set=report.contest_ids).to_numpy(zero_copy_only=False)
    contest_at = contest_at.astype(np.int64) if n_selections else np.zeros(0, np.int64)
    item_row = np.repeat(group_row, np.diff(counts.starts))
    closed = np.flatnonzero(has_counts.to_numpy(zero_copy_only=False))
    every, selected = np.arange(n_contests), np.arange(n_selections)
    zeros = np.zeros
    keys = [np.concatenate(k) for k in zip(
        (every, zeros(n_contests), zeros(n_contests), zeros(n_contests), zeros(n_contests)),
        (contest_at, np.ones(n_selections), selected, zeros(n_selections), zeros(n_selections)),
        (contest_at[item_row], np.ones(n_items), item_row, np.ones(n_items), np.arange(n_items)),
        (contest_at[closed], np.ones(len(closed)), closed, np.full(len(closed), 2), zeros(len(closed))),
        (every, np.full(n_contests, 2), zeros(n_contests), zeros(n_contests), zeros(n_contests)), strict=True)]
    texts = pa.concat_arrays([pa.array(heads, js.TEXT), selection_heads, counts.items,
                              js.constant("]}", len(closed)), pa.array(tails, js.TEXT)])
    order = np.lexsort(keys[::-1])
    return js.concatenated(texts.take(pa.array(order, pa.int64()))), n_selections

