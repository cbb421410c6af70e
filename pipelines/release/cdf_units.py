"""The document's ``GpUnit`` array: every division of the election and every unit results name without a
declaration, as a ``ReportingUnit`` with its type, composing units and station turnout."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.release import cdf_json as js
from pipelines.release import cdf_report as rp
from pipelines.release import cdf_vocab as v


def _station_voters(report: rp.Report) -> pa.Table | None:
    """A station's registered voters and ballots cast, where every contest's tally agrees on them.

    The source repeats the station's figures on each of its contests' tallies; when they disagree, neither is
    the station's figure, so it stays unknown.
    """
    t = report.turnout
    if t is None or t.num_rows == 0:
        return None
    figures = ("registered_voters", "ballots_cast")
    table = pa.table({"station_id": rp.column(t, "station_id"), **{f: rp.column(t, f, pa.int64()) for f in figures}})
    grouped = table.group_by("station_id").aggregate(
        [(f, "count_distinct", pc.CountOptions(mode="all")) for f in figures] + [(f, "min") for f in figures])
    out = {"station_id": grouped["station_id"].combine_chunks()}
    for f in figures:
        agreed = pc.equal(grouped[f"{f}_count_distinct"], 1)
        out[f] = pc.if_else(agreed, grouped[f"{f}_min"], pa.scalar(None, pa.int64())).combine_chunks()
    return pa.table(out)


def gp_units(report: rp.Report) -> pa.Buffer:
    """Every division of the election (and each unit results name without a declaration) as a ReportingUnit,
    comma-separated, by id."""
    d = report.divisions
    declared = rp.column(d, "division_id") if d is not None else pa.array([], js.TEXT)
    named = pa.concat_arrays([a.cast(js.TEXT) for a in report.units_named])
    stations = pa.concat_arrays([a.cast(js.TEXT) for a in report.stations_named]) if report.stations_named else \
        pa.array([], js.TEXT)
    undeclared = pa.array([] if pc.any(pc.equal(declared, report.scope)).as_py() else [report.scope], js.TEXT)
    others = pc.unique(named.filter(pc.invert(pc.is_in(named, value_set=pa.concat_arrays([declared, undeclared])))))
    others = others.filter(pc.and_(others.is_valid(), pc.not_equal(others, report.scope).fill_null(False)))
    places = pc.unique(stations.filter(pc.invert(pc.is_in(
        stations, value_set=pa.concat_arrays([declared, undeclared, others])))))
    places = places.filter(places.is_valid())
    ids = pa.concat_arrays([declared, undeclared, others, places])
    order = pc.sort_indices(ids)
    ids = ids.take(order)
    n = len(ids)
    at = pc.index_in(ids, value_set=declared)
    # Type: the division's kind and label, or for units no division declares, what names them.
    extra_types = pa.array(["country"] * len(undeclared) + [v.OTHER] * len(others) + ["polling-place"] * len(places),
                           js.TEXT)
    extra_index = order.to_numpy().astype(np.int64) - len(declared)
    extra_type = pc.take(extra_types, pa.array(np.maximum(extra_index, 0), mask=extra_index < 0))
    if d is not None and d.num_rows:
        kind, label = rp.column(d, "kind"), rp.column(d, "label")
        combo = pc.dictionary_encode(rp.pairs(kind, label))
        first = pc.index_in(combo.dictionary, value_set=rp.pairs(kind, label)).to_pylist()
        mapped = [v.unit_type(kind[i].as_py(), label[i].as_py()) for i in first]
        typ = pc.take(pc.take(pa.array([t for t, _ in mapped], js.TEXT), combo.indices), at)
        other = pc.take(pc.take(pa.array([o for _, o in mapped], js.TEXT), combo.indices), at)
        typ = pc.if_else(at.is_valid(), typ, extra_type)
        name = pc.take(rp.column(d, "name"), at)
    else:
        typ = extra_type
        other = name = pa.nulls(n, js.TEXT)
    voters = _station_voters(report)
    figures = {}
    for f in ("ballots_cast", "registered_voters"):
        figures[f] = js.integer(rp.lookup(ids, voters["station_id"].combine_chunks(), voters[f].combine_chunks())) \
            if voters is not None else pa.nulls(n, js.TEXT)
    quoted = js.string(ids)
    units = js.obj(n, [
        ("@id", quoted), ("@type", '"ElectionResults.ReportingUnit"'), ("ComposingGpUnitIds", _composing(report, ids)),
        ("ExternalIdentifier", pc.if_else(pc.starts_with(ids, "ocd-division/"), pc.binary_join_element_wise(
            pa.scalar('[{"@type":"ElectionResults.ExternalIdentifier","Type":"ocd-id","Value":', js.TEXT), quoted,
            pa.scalar("}]", js.TEXT), pa.scalar("", js.TEXT)), rp.NONE)),
        ("Name", pc.if_else(rp.truthy(name), js.text(name.fill_null(""), rp.LANGUAGE), rp.NONE)),
        ("OtherType", pc.if_else(rp.truthy(other), js.string(other.fill_null("")), rp.NONE)),
        ("Type", js.string(typ)),
        ("VotersParticipated", figures["ballots_cast"]), ("VotersRegistered", figures["registered_voters"])],
        before=js.separators(np.array([0, n])))
    return js.concatenated(units)


def _composing(report: rp.Report, ids: pa.Array) -> pa.Array:
    """Each unit's ``ComposingGpUnitIds`` JSON: the divisions naming it as parent or in member_of (null: none)."""
    d = report.divisions
    if d is None or d.num_rows == 0:
        return pa.nulls(len(ids), js.TEXT)
    child = rp.column(d, "division_id")
    parents = [rp.column(d, "parent_id")]
    children = [child]
    if "member_of" in d.column_names:
        member_of = d["member_of"].combine_chunks()
        parents.append(js.plain(pc.list_flatten(member_of)))
        children.append(pc.take(child, pc.list_parent_indices(member_of)))
    pairs = pa.table({"parent": pa.concat_arrays(parents), "child": pa.concat_arrays(children)})
    pairs = pairs.filter(rp.truthy(pairs["parent"].combine_chunks()))
    if pairs.num_rows == 0:
        return pa.nulls(len(ids), js.TEXT)
    pairs = pairs.take(pc.sort_indices(pairs, sort_keys=[("parent", "ascending"), ("child", "ascending")]))
    parent, child = pairs["parent"].combine_chunks(), pairs["child"].combine_chunks()
    pairs = pairs.take(pa.array(js.runs(parent, child)[:-1]))
    parent, child = pairs["parent"].combine_chunks(), pairs["child"].combine_chunks()
    starts = js.runs(parent)
    return rp.lookup(ids, parent.take(pa.array(starts[:-1])), js.arrays(js.string(child), starts))

