"""Contract facts are declared once; where another view is derived from a declaration, the two agree."""

from __future__ import annotations

from pipelines.contract import schemas, topics, vocabulary
from pipelines.contract.record_types import EVENT_TYPE_BY_NAME, EVENT_TYPES, INGESTIBLE, TOPICS_BY_RECORD_TYPE, topic_of


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
