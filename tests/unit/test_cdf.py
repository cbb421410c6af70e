"""The NIST SP 1500-100 v2 export: valid against the official schema, the same numbers as contest_results, every
reference resolved, unknown figures absent, and the same bytes from the same tables (compact JSON with sorted
keys, gzip-compressed as published)."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.release import cdf
from pipelines.release.store import Blob
from tests.support import contests as fx

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "nist" / "NIST_V2_election_results_reporting.json"
AT = datetime(2020, 11, 5, 12, 30, tzinfo=UTC)
METHOD_TYPES = {"votes_election_day": "election-day", "votes_early": "early", "votes_mail": "absentee-mail",
                "votes_absentee": "absentee", "votes_provisional": "provisional", "votes_other": "other"}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(json.loads(SCHEMA.read_text(encoding="ascii")))


def _report(tables: dict[str, pa.Table], election_id: str = fx.ELECTION) -> dict[str, Any]:
    return json.loads(cdf.election_report(tables, election_id, generated_at=AT))


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return _report(fx.contest_tables())


def _contests(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["@id"]: c for c in doc["Election"][0]["Contest"]}


def _errors(validator: jsonschema.Draft4Validator, doc: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_documents_validate_against_the_official_schema(validator):
    for default in (True, False):
        docs = cdf.cdf_documents(fx.contest_tables(with_default_contest=default), generated_at=AT)
        assert list(docs) == [f"cdf/{fx.ELECTION}.json.gz"]
        assert _errors(validator, json.loads(docs[f"cdf/{fx.ELECTION}.json.gz"])) == []


def test_the_schema_check_catches_a_broken_document(validator, doc):
    no_votes_allowed = json.loads(json.dumps(doc))
    del _contests(no_votes_allowed)[fx.PRESIDENT]["VotesAllowed"]
    bad_count_type = json.loads(json.dumps(doc))
    _contests(bad_count_type)[fx.QUESTION]["ContestSelection"][0]["VoteCounts"][0]["Type"] = "by-pigeon"
    bad_unit_type = json.loads(json.dumps(doc))
    bad_unit_type["GpUnit"][0]["Type"] = "galaxy"
    for broken in (no_votes_allowed, bad_count_type, bad_unit_type):
        assert _errors(validator, broken)


def test_vote_counts_equal_contest_results(doc):
    results = fx.contest_tables()["contest_results"].to_pylist()
    contests = _contests(doc)
    exported: dict[tuple[str, str, str, str], float] = {}
    for contest in contests.values():
        for sel in contest["ContestSelection"]:
            selection_id = sel["@id"].split("#", 1)[1]
            for vc in sel.get("VoteCounts", []):
                key = (contest["@id"], selection_id, vc["GpUnitId"], vc["Type"])
                assert key not in exported, f"two counts for {key}"
                exported[key] = vc["Count"]
    expected: dict[tuple[str, str, str, str], float] = {}
    for r in results:
        unit = r["unit_id"]
        if r["level"] == "contest":
            unit = contests[r["contest_id"]]["ElectionDistrictId"]
            if (r["contest_id"], r["selection_id"], unit, "total") in expected:
                continue  # the district's division row already gave it
        expected[(r["contest_id"], r["selection_id"], unit, "total")] = r["votes"]
        for column, typ in METHOD_TYPES.items():
            if r[column] is not None:
                expected[(r["contest_id"], r["selection_id"], unit, typ)] = r[column]
    assert exported == expected
    # Spot checks by hand: a division total, a method breakdown, a method no tally of a unit reported.
    assert exported[(fx.PRESIDENT, "candidate:joseph-biden", fx.CD15, "total")] == 190
    assert exported[(fx.PRESIDENT, "candidate:joseph-biden", fx.P2, "provisional")] == 5
    assert exported[(fx.PRESIDENT, "candidate:joseph-biden", fx.FOREST, "absentee-mail")] == 65
    assert (fx.PRESIDENT, "candidate:joseph-biden", fx.P3, "election-day") not in exported
    # The default contest has no district: its contest-level total sits on the election's scope.
    assert exported[(fx.DEFAULT, "candidate:glenn-thompson", fx.US, "total")] == 28


def test_contest_classes_selections_and_required_fields(doc):
    c = _contests(doc)
    president = c[fx.PRESIDENT]
    assert president["@type"] == "ElectionResults.CandidateContest"
    assert (president["NumberElected"], president["VotesAllowed"], president["ElectionDistrictId"]) == (1, 1, fx.PA)
    assert (president["SubUnitsReported"], president["TotalSubUnits"]) == (3, 3)
    biden = next(s for s in president["ContestSelection"] if s["@id"].endswith("joseph-biden"))
    assert biden["CandidateIds"] == ["candidate:joseph-biden", "candidate:kamala-harris"]
    assert biden["EndorsementPartyIds"] == ["party:dem"]
    write_in = next(s for s in president["ContestSelection"] if s["@id"].endswith("write-ins"))
    assert write_in["IsWriteIn"] is True and "CandidateIds" not in write_in
    party_list = c[fx.LIST]
    assert party_list["@type"] == "ElectionResults.PartyContest" and "VotesAllowed" not in party_list
    assert [s["PartyIds"] for s in party_list["ContestSelection"]] == [["party:dem"], ["party:rep"]]
    question = c[fx.QUESTION]
    assert question["@type"] == "ElectionResults.BallotMeasureContest"
    assert sorted(s["Selection"]["Text"][0]["Content"] for s in question["ContestSelection"]) == ["No", "Yes"]
    retention = c[fx.RETENTION]
    assert retention["@type"] == "ElectionResults.RetentionContest"
    assert retention["CandidateId"] == "candidate:jane-smith"
    assert (retention["SubUnitsReported"], retention["TotalSubUnits"]) == (2, 3)
    default = c[fx.DEFAULT]
    assert default["@type"] == "ElectionResults.CandidateContest" and "TotalSubUnits" not in default
    # NIST requires VotesAllowed; the stand-in is said in the report's notes, never silent.
    assert default["VotesAllowed"] == 1 and "NumberElected" not in default
    assert f"{fx.DEFAULT}: VotesAllowed and NumberElected not published" in doc["Notes"]
    assert doc["Status"] == "unofficial-partial"  # the retention question: 2 of 3 precincts


def test_gp_units_types_and_composition(doc):
    units = {u["@id"]: u for u in doc["GpUnit"]}
    assert set(units) == {d["division_id"] for d in fx.DIVISIONS}
    types = {k: u["Type"] for k, u in units.items()}
    assert types == {fx.US: "country", fx.PA: "state", fx.FOREST: "county", fx.CD15: "congressional",
                     fx.HD65: "state-house", fx.P1: "precinct", fx.P2: "precinct", fx.P3: "precinct"}
    assert units[fx.CD15]["ComposingGpUnitIds"] == [fx.P1, fx.P2, fx.P3]
    assert units[fx.HD65]["ComposingGpUnitIds"] == [fx.P1, fx.P2]
    assert units[fx.PA]["ComposingGpUnitIds"] == sorted([fx.CD15, fx.FOREST, fx.HD65])
    assert "ComposingGpUnitIds" not in units[fx.P1]
    assert units[fx.P1]["Name"]["Text"][0]["Content"] == "Barnett"
    assert doc["Election"][0]["ElectionScopeId"] == fx.US
    assert (units[fx.P1]["VotersRegistered"], units[fx.P1]["VotersParticipated"]) == (1000, 310)


def test_unknown_figures_stay_absent(doc):
    units = {u["@id"]: u for u in doc["GpUnit"]}
    assert "VotersRegistered" not in units[fx.P3] and units[fx.P3]["VotersParticipated"] == 45
    other = {o["GpUnitId"]: o for o in _contests(doc)[fx.PRESIDENT]["OtherCounts"]}
    assert other[fx.P1] == {"@type": "ElectionResults.OtherCounts", "GpUnitId": fx.P1, "Overvotes": 2,
                            "Undervotes": 5}
    assert "Undervotes" not in other[fx.P2] and other[fx.P3]["Overvotes"] == 0
    # Every precinct reported overvotes, not every one undervotes: only the overvotes add up for the state.
    assert other[fx.PA] == {"@type": "ElectionResults.OtherCounts", "GpUnitId": fx.PA, "Overvotes": 3}
    persons = {p["@id"]: p for p in doc["Person"]}
    assert "Gender" not in persons["candidate:jane-smith#person"]
    assert persons["candidate:kamala-harris#person"]["Gender"] == "female"


def _walk(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)
    else:
        yield key, node


def test_every_reference_resolves_and_ids_are_unique(doc):
    ids = [v for k, v in _walk(doc) if k == "@id"]
    assert len(ids) == len(set(ids))
    refs = [(k, v) for k, v in _walk(doc) if k.endswith("Id") or k.endswith("Ids")]
    refs = [(k, v) for k, v in refs if k not in ("VendorApplicationId",)]
    assert refs and all(v in set(ids) for _, v in refs), [r for r in refs if r[1] not in set(ids)]


def _shuffled(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    return {n: t.take(pc.indices_nonzero(pc.greater_equal(pa.array(range(t.num_rows)), 0))[::-1])
            for n, t in tables.items()}


def test_same_tables_give_the_same_bytes():
    one = cdf.cdf_documents(fx.contest_tables(), generated_at=AT)
    assert one == cdf.cdf_documents(_shuffled(fx.contest_tables()), generated_at=AT)
    assert one == cdf.cdf_documents(fx.contest_tables(), generated_at=AT)
    published = [cdf.release_documents(t, generated_at=AT)[0] for t in (fx.contest_tables(),
                                                                                 _shuffled(fx.contest_tables()))]
    assert published[0] == published[1]


def test_complete_when_every_contest_reported_everywhere(validator):
    tables = fx.contest_tables()
    keep = pc.is_in(tables["contests"].column("contest_id"), pa.array([fx.PRESIDENT, fx.QUESTION]))
    doc = _report({**tables, "contests": tables["contests"].filter(keep)})
    assert doc["Status"] == "unofficial-complete" and "Notes" not in doc
    assert sorted(_contests(doc)) == [fx.QUESTION, fx.PRESIDENT]
    assert _errors(validator, doc) == []


def test_release_documents_are_what_the_release_step_writes(validator):
    """What pipelines.release.pipeline.release() writes beside datapackage.json, and lists in the manifest."""
    docs, entries = cdf.release_documents(fx.contest_tables(), generated_at=AT)
    key = f"cdf/{fx.ELECTION}.json.gz"
    assert list(docs) == [key] and isinstance(docs[key], Blob) and docs[key].content_type == "application/gzip"
    body = docs[key].body
    document = json.loads(gzip.decompress(body))
    assert _errors(validator, document) == []
    assert document["GeneratedDate"] == "2020-11-05T12:30:00Z"
    # gzip members without a name or time: the same JSON is always the same file. The Contest array's blocks are
    # members of their own (cdf_blocks), the frame around them two (cdf_frame), and the release's time and status
    # two more.
    members = _members(body)
    # Each member is a part of its own; what the manifest says lets a downloader check each and the whole.
    assert docs[key].members == tuple(len(m) for m, _ in members)
    assert entries == {key: {"path": key, "format": cdf.FORMAT, "media_type": "application/gzip",
                             "election_id": fx.ELECTION, "inputs": None, "bytes": len(body),
                             "sha256": hashlib.sha256(body).hexdigest(),
                             "parts": [{"sha256": hashlib.sha256(m).hexdigest(), "bytes": len(m)} for m, _ in members]}}
    assert len(members) >= 5 and members[0][1].endswith(b'"Contest":[') and members[-3][1].startswith(b"],")
    assert b'"GeneratedDate"' in members[-3][1] and members[-2][1].startswith(b'"GpUnit":[')
    assert members[-1][1].startswith(b'"SequenceEnd"')
    assert all(m == gzip.compress(text, compresslevel=cdf.GZIP_LEVEL, mtime=0) for m, text in members)
    assert b"".join(t for _, t in members) == cdf.election_report(fx.contest_tables(), fx.ELECTION, generated_at=AT)


def _members(body: bytes) -> list[tuple[bytes, bytes]]:
    """The gzip members of ``body``, each with the text it holds."""
    out = []
    while body:
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        text = member.decompress(body) + member.flush()
        used = len(body) - len(member.unused_data)
        out.append((body[:used], text))
        body = member.unused_data
    return out


def test_no_contest_tables_no_documents_and_a_log_line(caplog):
    tables = fx.contest_tables()
    v1 = {n: t for n, t in tables.items() if not n.startswith("contest")}
    with caplog.at_level(logging.WARNING, logger=cdf.__name__):
        assert cdf.release_documents(v1, generated_at=AT) == ({}, {})
    assert "no NIST SP 1500-100 export" in caplog.text and "contests, contest_results" in caplog.text


def test_unknown_election_is_a_key_error():
    with pytest.raises(KeyError):
        cdf.election_report(fx.contest_tables(), "general.us.zz.2020-11-03", generated_at=AT)


def test_a_large_election_is_exported_at_division_and_contest_level(validator, monkeypatch):
    tables = fx.contest_tables()
    stations = {r["unit_id"] for r in tables["contest_results"].to_pylist() if r["level"] == "station"}
    assert stations
    monkeypatch.setattr(cdf, "STATION_LEVEL_MAX_ROWS", 0)  # every election is "large" now
    doc = _report(tables)
    assert doc["Format"] == "summary-contest" and "contest_results" in doc["Notes"]
    assert _errors(validator, doc) == []
    units = {u["@id"] for u in doc["GpUnit"]}
    assert not units & stations
    counted = {vc["GpUnitId"] for c in doc["Election"][0]["Contest"] for s in c.get("ContestSelection", [])
               for vc in s.get("VoteCounts", [])}
    assert counted and not counted & stations and counted <= units


TRICKY = 'Ľudová "strana" \\ a\tb\nc\x01 \u2028 ✓'


def _renamed(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """Every name and label replaced by one that JSON must escape (quotes, backslash, control characters)."""
    out = dict(tables)
    for name, column in (("divisions", "name"), ("candidates", "name"), ("contests", "name"), ("contests", "office"),
                         ("contest_selections", "label"), ("parties", "name"), ("elections", "name")):
        t = out[name]
        values = pa.array([None if v is None else f"{TRICKY} {i}" for i, v in enumerate(t[column].to_pylist())],
                          t.schema.field(column).type)
        out[name] = t.set_column(t.column_names.index(column), column, values)
    return out


def test_the_document_is_canonical_json_whatever_the_names(validator):
    """Written as json.dumps(..., ensure_ascii=False, separators=(",", ":"), sort_keys=True) writes it."""
    for tables in (fx.contest_tables(), _renamed(fx.contest_tables())):
        body = cdf.election_report(tables, fx.ELECTION, generated_at=AT)
        document = json.loads(body)
        assert json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode() == body
        assert _errors(validator, document) == []
    names = {c["Name"] for c in _contests(document).values()}
    assert f"{TRICKY} 0" in names  # the text survives the escaping


def _staged(tables: dict[str, pa.Table], folder: Path) -> dict[str, Any]:
    """The tables as a release stages them (contest_results in several files)."""
    from pipelines.fold.tables import file_layout
    from pipelines.release.parquet import write_table_files

    return {n: write_table_files(n, t, folder, **file_layout(n, 100)) for n, t in tables.items()}


@pytest.mark.parametrize("station_rows", [cdf.STATION_LEVEL_MAX_ROWS, 0])
def test_staged_tables_give_the_same_document(tmp_path, monkeypatch, station_rows):
    """What the release reads (only the export's columns; at summary level no station rows) makes the document
    the whole tables make."""
    monkeypatch.setattr(cdf, "STATION_LEVEL_MAX_ROWS", station_rows)
    tables = fx.contest_tables()
    files = _staged(tables, tmp_path)
    assert len(files["contest_results"].parts) > 1
    export = cdf.read_export_tables(files)
    assert export.format == ("summary-contest" if station_rows == 0 else "precinct-level")
    if station_rows == 0:
        assert "station" not in export.tables["contest_results"]["level"].to_pylist()
        assert "station_turnout" not in export.tables
        assert not {"PRECINCT", "POLLING_STATION"} & set(export.tables["divisions"]["kind"].to_pylist())
    for name, table in export.tables.items():
        assert set(table.column_names) <= set(cdf.COLUMNS[name])
    assert cdf.election_report(export, fx.ELECTION, generated_at=AT) == \
        cdf.election_report(tables, fx.ELECTION, generated_at=AT)


def test_a_document_with_the_previous_releases_inputs_is_carried_over(tmp_path, monkeypatch):
    files = _staged(fx.contest_tables(), tmp_path)
    key = f"cdf/{fx.ELECTION}.json.gz"
    docs, entries = cdf.release_documents(files, generated_at=AT)
    assert isinstance(docs[key], Blob) and entries[key]["inputs"] == cdf.export_inputs(files) is not None
    previous = {"release_id": "r1", "documents": entries}
    later = datetime(2020, 11, 6, tzinfo=UTC)
    with monkeypatch.context() as m:
        m.setattr(cdf, "read_export_tables", lambda _: pytest.fail("tables read for a carried document"))
        carried, again = cdf.release_documents(files, generated_at=later, previous=previous)
    assert carried == {}  # nothing to upload: the release lists the same parts
    assert again[key] == entries[key]
    # Another table's bytes, an earlier manifest without inputs, or one whose document was a single file: built again.
    changed = {**files, "contest_summary": replace(files["contest_summary"], sha256="0" * 64)}
    unknown = {"release_id": "r1", "documents": {key: {**entries[key], "inputs": None}}}
    whole = {"release_id": "r1", "documents": {key: {k: v for k, v in entries[key].items() if k != "parts"}}}
    for staged, prior in ((changed, previous), (files, unknown), (files, whole)):
        docs, _ = cdf.release_documents(staged, generated_at=later, previous=prior)
        assert isinstance(docs[key], Blob)
        assert json.loads(gzip.decompress(docs[key].body))["GeneratedDate"] == "2020-11-06T00:00:00Z"


def test_lazy_tables_are_read_once_when_first_used_and_not_to_say_they_are_there():
    from pipelines.release.cdf_tables import LazyTables

    reads: list[str] = []

    def read(name: str) -> pa.Table:
        reads.append(name)
        return pa.table({"x": [name]})

    tables = LazyTables({"contests": pa.table({"x": ["c"]}), "divisions": lambda: read("divisions")})
    assert "divisions" in tables and "parties" not in tables and sorted(tables) == ["contests", "divisions"]
    assert reads == []
    without = tables.without("contests")
    assert "contests" not in without and list(without) == ["divisions"] and without.get("contests") is None
    assert without["divisions"]["x"].to_pylist() == ["divisions"] == tables["divisions"]["x"].to_pylist()
    assert reads == ["divisions"]  # read once, shared with the view
