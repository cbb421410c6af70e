"""Each contest's ``ContestSelection`` objects (candidate, party or ballot-measure selections) up to their
``VoteCounts``, and the ballot labels and party references they give the document's other parts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.release import cdf_json as js
from pipelines.release import cdf_report as rp
from pipelines.release.cdf_counts import Counts


def _selection_rows(report: rp.Report) -> pa.Table:
    """Declared selections, plus any selection with results but no declaration (a v1 default contest's), sorted
    by contest and selection."""
    names = ("contest_id", "selection_id", "kind", "label", "candidate_id", "party_id")
    parts = []
    declared_pairs = pa.array([], js.TEXT)
    if report.declared is not None and report.declared.num_rows:
        d = report.declared
        keyed = d.append_column("_key", rp.pairs(rp.column(d, "contest_id"), rp.column(d, "selection_id")))
        declared = rp.last_per_key(keyed, "_key")
        declared_pairs = declared["_key"].combine_chunks()
        mates = declared["running_mates"].combine_chunks() if "running_mates" in declared.column_names else \
            pa.nulls(declared.num_rows, pa.list_(pa.string()))
        parts.append(pa.table({**{n: rp.column(declared, n) for n in names},
                               "running_mates": mates.cast(pa.list_(js.TEXT))}))
    r = report.results
    if r.rows:
        c, contests = r.ids["contest_id"]
        s, selections = r.ids["selection_id"]
        k, kinds = r.ids["selection_kind"]
        pair = c * (len(selections) + 1) + s
        # Each pair once, with its first kind in code order (the rows of one selection share it).
        order = np.lexsort((np.where(k < 0, len(kinds), k), pair))
        first = order[rp.starts(pair[order])[:-1]]
        contest = contests.take(pa.array(c[first], pa.int64()))
        selection = selections.take(pa.array(s[first], pa.int64()))
        kind = kinds.take(pa.array(np.maximum(k[first], 0), pa.int64(), mask=k[first] < 0))
        new = pc.invert(pc.is_in(rp.pairs(contest, selection), value_set=declared_pairs))
        contest, selection, kind = contest.filter(new), selection.filter(new), kind.filter(new)
        kind = pc.if_else(rp.truthy(kind), kind, pa.scalar("OTHER", js.TEXT))
        none = pa.nulls(len(selection), js.TEXT)
        parts.append(pa.table({
            "contest_id": contest, "selection_id": selection, "kind": kind, "label": none,
            "candidate_id": pc.if_else(pc.equal(kind, "CANDIDATE"), selection, none),
            "party_id": pc.if_else(pc.equal(kind, "PARTY"), selection, none),
            "running_mates": pa.nulls(len(selection), pa.list_(js.TEXT))}))
    if not parts:
        return pa.table({**{n: pa.array([], js.TEXT) for n in names},
                         "running_mates": pa.array([], pa.list_(js.TEXT))})
    rows = pa.concat_tables(parts)
    rows = rows.take(pc.sort_indices(rows, sort_keys=[("contest_id", "ascending"), ("selection_id", "ascending")]))
    return pa.table({n: rows[n].combine_chunks() for n in rows.column_names})


def _people_lists(s: pa.Table, candidate_class: pa.Array) -> tuple[pa.Table, pa.Array]:
    """The persons of each candidate selection (its candidate, then its running mates, empty ones left out) as
    (row, position, person), and each row's ``CandidateIds`` JSON (null where it has none)."""
    candidate, mates = s["candidate_id"].combine_chunks(), s["running_mates"].combine_chunks()
    first = pc.and_(rp.truthy(candidate), candidate_class)
    flat = pc.list_flatten(mates)
    parent = pc.list_parent_indices(mates)
    offsets = mates.offsets.to_numpy()
    offsets = offsets - offsets[0]
    position = np.arange(len(flat)) - offsets[parent.to_numpy()] + 1 if len(flat) else np.zeros(0, np.int64)
    keep = pc.and_(rp.truthy(flat), pc.take(candidate_class, parent))
    people = pa.table({
        "row": pa.concat_arrays([pa.array(np.flatnonzero(first.to_numpy(zero_copy_only=False)), pa.int64()),
                                 parent.filter(keep).cast(pa.int64())]),
        "position": pa.concat_arrays([pa.array(np.zeros(pc.sum(first).as_py() or 0, np.int64)),
                                      pa.array(position, pa.int64()).filter(keep)]),
        "person": pa.concat_arrays([candidate.filter(first), js.plain(flat.filter(keep))])})
    people = people.take(pc.sort_indices(people, sort_keys=[("row", "ascending"), ("position", "ascending")]))
    rows = people["row"].combine_chunks()
    starts = js.runs(rows)
    lists = js.arrays(js.string(people["person"]), starts)
    at = np.full(s.num_rows, -1, np.int64)
    at[rows.take(pa.array(starts[:-1], pa.int64())).to_numpy()] = np.arange(len(starts) - 1)
    return people, pc.take(lists, pa.array(np.maximum(at, 0), mask=at < 0))


def selections(report: rp.Report, counts: Counts) -> tuple[pa.Table, pa.Array, pa.Array, np.ndarray]:
    """The selections (contest_id, kind, candidate_id, sorted), each one's JSON up to its ``VoteCounts`` array
    (opened, or the object closed when it has none), and for each run of ``counts`` the row it belongs to."""
    s = _selection_rows(report)
    n = s.num_rows
    contest, sid = s["contest_id"].combine_chunks(), s["selection_id"].combine_chunks()
    kind, label = s["kind"].combine_chunks(), s["label"].combine_chunks()
    candidate, party = s["candidate_id"].combine_chunks(), s["party_id"].combine_chunks()
    has_candidate, has_party = rp.truthy(candidate), rp.truthy(party)
    other = pc.equal(kind, "OTHER").fill_null(False)
    candidate_class = pc.or_(pc.is_in(kind, value_set=pa.array(["CANDIDATE", "WRITE_IN"], js.TEXT)),
                             pc.and_(other, has_candidate))
    party_class = pc.and_(pc.invert(candidate_class),
                          pc.or_(pc.equal(kind, "PARTY").fill_null(False), pc.and_(other, has_party)))
    measure_class = pc.invert(pc.or_(candidate_class, party_class))
    people, candidate_ids = _people_lists(s, candidate_class)
    # A person's ballot label is the first selection's naming them (contests and selections in document order).
    person_rows = people["row"].combine_chunks()
    person_label = pc.take(label, person_rows)
    report.labels.append(pa.table({
        "person": people["person"].combine_chunks(),
        "label": pc.if_else(rp.truthy(person_label), person_label, people["person"].combine_chunks()),
        "rank": pc.add(pc.multiply(person_rows, 1 << 20), people["position"].combine_chunks())}))
    endorsed = pc.and_(candidate_class, has_party)
    party_ids = pc.if_else(has_party, party, sid)
    report.party_refs += [party.filter(endorsed), party_ids.filter(party_class)]
    kind_json = pc.if_else(candidate_class, '"ElectionResults.CandidateSelection"',
                           pc.if_else(party_class, '"ElectionResults.PartySelection"',
                                      '"ElectionResults.BallotMeasureSelection"')).cast(js.TEXT)
    group_row = pc.index_in(rp.pairs(counts.contest_id, counts.selection_id), value_set=rp.pairs(contest, sid))
    group_row = group_row.to_numpy(zero_copy_only=False).astype(np.int64)
    has_counts = np.zeros(n, bool)
    has_counts[group_row] = True
    one = np.arange(n + 1)
    items = js.obj(n, [
        ("@id", js.string(pc.binary_join_element_wise(contest, sid, pa.scalar("#", js.TEXT)))),
        ("@type", kind_json),
        ("CandidateIds", candidate_ids),
        ("EndorsementPartyIds", pc.if_else(endorsed, js.arrays(js.string(party.fill_null("")), one), rp.NONE)),
        ("IsWriteIn", pc.if_else(pc.and_(candidate_class, pc.equal(kind, "WRITE_IN").fill_null(False)),
                                 pa.scalar("true", js.TEXT), rp.NONE)),
        ("PartyIds", pc.if_else(party_class, js.arrays(js.string(party_ids), one), rp.NONE)),
        ("Selection", pc.if_else(measure_class, js.text(pc.if_else(rp.truthy(label), label, sid), rp.LANGUAGE),
                                 rp.NONE))],
        before=js.separators(js.runs(contest)),
        after=pc.if_else(pa.array(has_counts), pa.scalar(',"VoteCounts":[', js.TEXT), pa.scalar("}", js.TEXT)))
    return pa.table({"contest_id": contest, "kind": kind, "candidate_id": candidate}), items, \
        pa.array(has_counts), group_row

