"""Provenance of the real test data, and the NIST SP 1500-100 v2 JSON schema an export will be checked against.

Each data file's git blob id must equal the one published at the commit its README names: the files are
byte for byte as published, and a change to any of them (an editor's line-end fix, say) fails here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
SCHEMA = DATA / "nist" / "NIST_V2_election_results_reporting.json"

PUBLISHED_BLOBS = {
    "openelections/ga/20160301__ga__primary__president__pierce__precinct.csv": "3dd4f9d51c6cb389108cae5b5f54e219e16b504e",
    "openelections/ga/20160726__ga__primary__runoff__taliaferro__precinct.csv": "c21dc87244ec473f9217d2bcca90abddfdc63eb6",
    "openelections/ga/20181106__ga__general__echols__precinct.csv": "8c4169451f48eca85520688dfe83d171dafc7b99",
    "openelections/ga/20181106__ga__general__schley__precinct.csv": "bd7df79958da2e56cad07e2b12df4cdea1a3ce6a",
    "openelections/ga/20181106__ga__general__taliaferro__precinct.csv": "d5bab222ae3d697563d97c980012d827259df7c2",
    "openelections/pa/20201103__pa__general__forest__precinct.csv": "3e2139f169318e6faf0d0bd9f2599d9ea6685e49",
    "openelections/pa/20221108__pa__general__montour__precinct.csv": "7f17d6b8263bb4b6605f0979b8dac5aa6628266b",
    "openelections/tx/20161108__tx__general__parmer__precinct.csv": "af6847be06cc901452cf667228b74670685c78ec",
    "openelections/tx/20201103__tx__general__brooks__precinct.csv": "7571fb0e278b472a2da3b9bdd0ea635d46bbd11b",
    "openelections/tx/20201103__tx__general__stonewall__precinct.csv": "9cf3d261e0e57a607d8ca7b1f7f154a1c87c37d2",
    "nist/NIST_V2_election_results_reporting.json": "f4a2cd36e3fc4d16888e22ed734b8a0e134f10f7",
}


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_real_files_are_byte_for_byte_as_published():
    found = {p.relative_to(DATA).as_posix() for p in DATA.rglob("*") if p.suffix in (".csv", ".json")}
    assert found >= set(PUBLISHED_BLOBS)
    for rel, blob in PUBLISHED_BLOBS.items():
        assert git_blob_id((DATA / rel).read_bytes()) == blob, rel
        assert rel.split("/")[-1] in (DATA / rel.split("/")[0] / "README.md").read_text(), f"{rel}: no origin noted"


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA.read_text(encoding="ascii"))


def test_schema_is_the_v2_election_report(schema):
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert schema["$ref"] == "#/definitions/ElectionResults.ElectionReport"
    defs = schema["definitions"]
    assert len(defs) == 59
    assert defs["ElectionResults.ElectionReport"]["required"] == [
        "@type", "Format", "GeneratedDate", "Issuer", "IssuerAbbreviation", "SequenceEnd", "SequenceStart",
        "Status", "VendorApplicationId"]
    # What an OpenElections import maps onto: vote methods → CountItemType; pseudo-candidates → OtherCounts.
    assert {"election-day", "early", "absentee-mail", "absentee", "provisional", "total", "write-in"} <= set(
        defs["ElectionResults.CountItemType"]["enum"])
    assert {"Overvotes", "Undervotes", "WriteIns"} <= set(defs["ElectionResults.OtherCounts"]["properties"])
    assert {"BallotsCast", "BallotsRejected"} <= set(defs["ElectionResults.BallotCounts"]["properties"])
    assert "VotersRegistered" in defs["ElectionResults.ReportingUnit"]["properties"]
    refs = {v for v in _walk(schema) if isinstance(v, str) and v.startswith("#/definitions/")}
    assert {r.removeprefix("#/definitions/") for r in refs} <= set(defs)  # no dangling $ref


def _walk(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)
    else:
        yield node


def test_schema_validates_a_minimal_report(schema):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft4Validator.check_schema(schema)
    report = {
        "@type": "ElectionResults.ElectionReport", "Format": "precinct-level",
        "GeneratedDate": "2020-11-03T20:00:00Z", "Issuer": "Ballotstream", "IssuerAbbreviation": "BS",
        "SequenceStart": 1, "SequenceEnd": 1, "Status": "unofficial-partial", "VendorApplicationId": "ballotstream",
        "GpUnit": [{"@type": "ElectionResults.ReportingUnit", "@id": "ru-forest", "Type": "county",
                    "VotersRegistered": 3508}],
    }
    validator = jsonschema.Draft4Validator(schema)
    assert list(validator.iter_errors(report)) == []
    broken = {k: v for k, v in report.items() if k != "Issuer"} | {"Status": "final"}
    assert len(list(validator.iter_errors(broken))) == 2
