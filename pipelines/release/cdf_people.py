"""The document's ``Candidate``, ``Person`` and ``Party`` arrays: every candidate registered or named by a
selection, a person for each registered one, and every party something in the document names."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.release import cdf_json as js
from pipelines.release import cdf_report as rp
from pipelines.release import cdf_vocab as v


def people(report: rp.Report) -> tuple[pa.Buffer, pa.Buffer]:
    """(Candidate[], Person[]) as comma-separated JSON: every registered candidate of the election and every one
    a selection names, by id; a Person for each registered one."""
    labels = pa.concat_tables(report.labels) if report.labels else pa.table(
        {"person": pa.array([], js.TEXT), "label": pa.array([], js.TEXT), "rank": pa.array([], pa.int64())})
    labels = labels.take(pc.sort_indices(labels, sort_keys=[("person", "ascending"), ("rank", "ascending")]))
    labels = labels.take(pa.array(js.runs(labels["person"].combine_chunks())[:-1], pa.int64()))
    registered = report.candidates
    if registered is None:
        registered = pa.table({n: pa.array([], js.TEXT) for n in ("candidate_id", "name", "party_id", "gender")})
    rid = rp.column(registered, "candidate_id")
    ids = pc.unique(pa.concat_arrays([rid, labels["person"].combine_chunks()]))
    ids = ids.take(pc.sort_indices(ids))
    at = pc.index_in(ids, value_set=rid)
    has_row = at.is_valid()
    name = pc.take(rp.column(registered, "name"), at)
    party = pc.take(rp.column(registered, "party_id"), at)
    gender = pc.take(rp.column(registered, "gender"), at)
    label = rp.lookup(ids, labels["person"].combine_chunks(), labels["label"].combine_chunks())
    ballot = pc.if_else(rp.truthy(name), name, pc.if_else(label.is_valid(), label, ids))
    report.party_refs.append(rp.column(registered, "party_id").filter(rp.truthy(rp.column(registered, "party_id"))))
    person_id = pc.binary_join_element_wise(ids, pa.scalar("#person", js.TEXT), pa.scalar("", js.TEXT))
    candidates = js.obj(len(ids), [
        ("@id", js.string(ids)), ("@type", '"ElectionResults.Candidate"'), ("BallotName", js.text(ballot, rp.LANGUAGE)),
        ("PartyId", pc.if_else(rp.truthy(party), js.string(party.fill_null("")), rp.NONE)),
        ("PersonId", pc.if_else(has_row, js.string(person_id), rp.NONE))],
        before=js.separators(np.array([0, len(ids)])))
    known = pc.and_(gender.is_valid(), pc.not_equal(gender, v.UNKNOWN).fill_null(False)).filter(has_row)
    full_name = pc.if_else(name.is_valid(), name, ids).filter(has_row)
    persons = pc.sum(has_row).as_py() or 0
    people = js.obj(persons, [
        ("@id", js.string(person_id.filter(has_row))), ("@type", '"ElectionResults.Person"'),
        ("FullName", js.text(full_name, rp.LANGUAGE)),
        ("Gender", pc.if_else(known, js.string(pc.utf8_lower(gender.filter(has_row).fill_null(""))), rp.NONE))],
        before=js.separators(np.array([0, persons])))
    return js.concatenated(candidates), js.concatenated(people)


def parties(report: rp.Report) -> list[str]:
    """Every party something in the document names, by id."""
    refs = pc.unique(pa.concat_arrays([r.cast(js.TEXT) for r in report.party_refs]))
    out = []
    for pid in sorted(p for p in refs.to_pylist() if p is not None):
        row = report.parties.get(pid) or {}
        party: dict[str, Any] = {"@id": pid, "@type": "ElectionResults.Party", "Name": rp.text(row.get("name") or pid)}
        if row.get("abbreviation"):
            party["Abbreviation"] = rp.text(row["abbreviation"])
        out.append(rp.dumps(party))
    return out

