"""Contract facts are declared once; where another view is derived from a declaration, the two agree."""

from __future__ import annotations

import re

from pipelines.contract import ids, schemas, topics, vocabulary
from pipelines.contract.record_types import (
    EVENT_TYPE_BY_NAME,
    EVENT_TYPES,
    INGESTIBLE,
    TOPICS_BY_RECORD_TYPE,
    retraction_topic,
    tally_key,
    topic_of,
)
from pipelines.fold import summary
from pipelines.gate import names
from pipelines.gate.checks import ALL_CHECKS, MATCH_REGEX


def test_every_record_type_in_schemas_has_a_topic() -> None:
    for name in schemas.record_types():
        assert EVENT_TYPE_BY_NAME[name].topics, f"{name} is in schemas/ but no TopicSpec.record_types names it"


def test_every_record_type_a_topic_names_has_a_schema_and_an_event_type() -> None:
    declared = set(schemas.record_types())
    for spec in topics.ALL_TOPICS:
        for name in spec.record_types:
            assert name in declared and name in EVENT_TYPE_BY_NAME, f"{spec.name} names unknown {name}"


def test_topic_view_and_record_type_view_agree() -> None:
    pairs_by_topic = {(spec.name, name) for spec in topics.ALL_TOPICS for name in spec.record_types}
    pairs_by_type = {(spec.name, e.name) for e in EVENT_TYPES for spec in e.topics}
    assert pairs_by_topic == pairs_by_type
    assert set(TOPICS_BY_RECORD_TYPE) == {e.name for e in EVENT_TYPES}


def test_only_retraction_goes_to_several_topics_and_those_are_the_event_topics() -> None:
    several = {e.name: e.topics for e in EVENT_TYPES if len(e.topics) != 1}
    assert several == {"Retraction": topics.EVENT_TOPICS}
    for e in EVENT_TYPES:
        if e.name != "Retraction":
            assert topic_of(e.name, {}) == e.topic


def test_ingestible_types_are_those_of_the_event_topics() -> None:
    assert INGESTIBLE == {e.name for e in EVENT_TYPES} - {"DeadLetter", "ReleasePublished"}
    assert INGESTIBLE == {name for spec in topics.EVENT_TOPICS for name in spec.record_types}


def test_fold_record_type_vocabulary_is_every_record_type_but_dead_letter() -> None:
    assert set(vocabulary.RECORD_TYPES) == {e.name for e in EVENT_TYPES} - {vocabulary.DEAD_LETTER}
    assert len(vocabulary.RECORD_TYPES) == len(set(vocabulary.RECORD_TYPES))


ID_SAMPLES = {
    ids.ELECTION_ID_RE: (["municipal.az.2025-01-29", "municipal.az.baku.2025-01-29"],
                         ["municipal.az.2025-1-29", "Municipal.az.2025-01-29", "municipal.az.2025-01-29\n", ""]),
    ids.DIVISION_ID_RE: (["ocd-division/country:az", "ocd-division/country:az/municipality:baku_1/station:12"],
                         ["ocd-division/country:AZ", "ocd-division/country:az/", "ocd-division/country:az\n"]),
    ids.COUNTRY_DIVISION_RE: (["ocd-division/country:az"], ["ocd-division/country:az/municipality:x", "country:az"]),
    ids.CONTEST_ID_RE: (["local.az.absheron-xirdalan.2025-01-29", "general.us.pa.state-house.d-71.2020-11-03"],
                        ["local.az.absheron_x.2025-01-29", "local.az.2025-01-29.x", "local.az.Absheron.2025-01-29"]),
    ids.SELECTION_ID_RE: (["candidate:jane-doe", "party:real", "option:yes", "write-in:john-smith"],
                          ["jane-doe", "option:", "vote:yes", "option:Yes"]),
}


def test_anchored_id_patterns_accept_exactly_what_the_predicates_accept() -> None:
    for pattern, (good, bad) in ID_SAMPLES.items():
        text = ids.anchored(pattern)
        for value in good:
            assert pattern.fullmatch(value) and re.search(text, value), (text, value)
        for value in bad:
            assert not pattern.fullmatch(value), (pattern.pattern, value)
            if not value.endswith("\n"):  # `$` also matches before a final newline; ids never end in one
                assert not re.search(text, value), (text, value)


def test_gate_and_fold_use_the_declared_id_patterns() -> None:
    regexes = {s.name: s.kwargs["regex"] for s in ALL_CHECKS if s.expectation == MATCH_REGEX}
    # A contest id has an election id's shape (docs/contests.md, Identifiers).
    assert regexes == {names.ELECTION_ID_FORMAT: ids.anchored(ids.ELECTION_ID_RE),
                       names.DIVISION_ID_FORMAT: ids.anchored(ids.DIVISION_ID_RE),
                       names.CONTEST_ID_FORMAT: ids.anchored(getattr(ids, "CONTEST_ID_RE", ids.ELECTION_ID_RE))}
    assert summary._COUNTRY.pattern == ids.anchored(ids.COUNTRY_DIVISION_RE)
    assert ids.is_division_id("ocd-division/country:az") and ids.COUNTRY_DIVISION_RE.fullmatch("ocd-division/country:az")


def test_retraction_topic_reads_the_declared_id_prefixes() -> None:
    assert retraction_topic(ids.INCIDENT_PREFIX + "x") is topics.OBSERVATIONS
    assert retraction_topic(ids.ARTICLE_PREFIX + "x") is topics.NEWS
    assert retraction_topic(ids.PARTY_PREFIX + "x") is topics.REFERENCE
    assert retraction_topic("municipal.az.2025-01-29|ocd-division/country:az") is topics.RESULTS
    for prefix, pattern in [(ids.PARTY_PREFIX, ids.PARTY_ID_RE), (ids.CANDIDATE_PREFIX, ids.CANDIDATE_ID_RE),
                            (ids.INCIDENT_PREFIX, ids.INCIDENT_ID_RE), (ids.ARTICLE_PREFIX, ids.ARTICLE_ID_RE)]:
        assert pattern.pattern.startswith(prefix) and pattern.fullmatch(prefix + "a-1")


E = "local.az.2025-01-29"
S = "ocd-division/country:az/constituency:23/polling_station:32"


def test_tally_key_is_per_contest_and_station_and_keeps_the_v1_key_for_the_default_contest() -> None:
    key = EVENT_TYPE_BY_NAME["StationTally"].key
    assert key is tally_key
    v1 = {"election_id": E, "station_id": S}  # a v1 tally has no contest_id at all
    assert key(v1) == key(v1 | {"contest_id": None}) == key(v1 | {"contest_id": E}) == f"{E}|{S}"
    council, measure = (key(v1 | {"contest_id": c}) for c in ("local.az.sabail.2025-01-29",
                                                               "local.az.sabail.measure-1.2025-01-29"))
    assert council == f"{E}|local.az.sabail.2025-01-29|{S}" and council != measure
    assert retraction_topic(council) is topics.RESULTS


def test_contest_ids_share_their_election_type_prefix_and_date() -> None:
    assert ids.contest_id(E, "Absheron-2") == "local.az.absheron-2.2025-01-29"
    assert ids.contest_matches_election("local.az.absheron-2.2025-01-29", E)
    assert ids.contest_matches_election(E, E)
    assert not ids.contest_matches_election("general.az.absheron.2025-01-29", E)
    assert not ids.contest_matches_election("local.az.absheron.2025-01-30", E)
    assert EVENT_TYPE_BY_NAME["ContestDeclared"].key({"contest_id": "local.az.x.2025-01-29"}) == "local.az.x.2025-01-29"
    assert EVENT_TYPE_BY_NAME["ContestDeclared"].topic is topics.REFERENCE


def test_contest_vocabularies_come_from_the_schemas() -> None:
    assert vocabulary.CONTEST_KINDS == ("CANDIDATE", "PARTY_LIST", "BALLOT_MEASURE", "RETENTION", "OTHER")
    assert vocabulary.SELECTION_KINDS == ("CANDIDATE", "PARTY", "OPTION", "WRITE_IN", "OTHER")
    assert vocabulary.VOTE_METHODS == ("ELECTION_DAY", "EARLY", "MAIL", "ABSENTEE", "PROVISIONAL", "OTHER")
    assert vocabulary.DEFAULT_CONTEST_KIND in vocabulary.CONTEST_KINDS
    assert {"COUNTY", "DISTRICT", "WARD", "PRECINCT"} <= set(vocabulary.DIVISION_KINDS)
    assert {"GENERAL", "PRIMARY", "RUNOFF", "SPECIAL"} <= set(vocabulary.ELECTION_KINDS)


def _documented_names(schema: dict, path: str = "") -> list[tuple[str, str]]:
    """(path, name) of every field of a record and of the records in its arrays, and every enum symbol."""
    out: list[tuple[str, str]] = []
    for f in schema.get("fields", []):
        out.append((path + f["name"], f["name"]))
        kinds = f["type"] if isinstance(f["type"], list) else [f["type"]]
        for kind in kinds:
            if isinstance(kind, dict) and kind.get("type") == "enum":
                out.extend((f"{path}{f['name']}={s}", s) for s in kind["symbols"])
            if isinstance(kind, dict) and kind.get("type") == "array" and isinstance(kind["items"], dict):
                out.extend(_documented_names(kind["items"], f"{path}{f['name']}[]."))
    return out


def test_every_record_type_field_and_enum_symbol_is_in_the_event_model_doc() -> None:
    doc = (schemas.SCHEMA_DIR.parent / "docs" / "events.md").read_text(encoding="utf-8")
    missing = [name for name in schemas.record_types() if f"**{name}**" not in doc]
    for name in schemas.record_types():
        for path, word in _documented_names(schemas.raw_schema(name)):
            if not re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", doc):
                missing.append(f"{name}.{path}")
    assert missing == []
