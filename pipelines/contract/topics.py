"""Every Kafka topic Ballotstream uses, declared once.

Event topics keep everything forever (retention -1): they are the source of truth, and corrections need the
versions they supersede. Only ``releases`` holds current state (the latest release per dataset), so it is
compacted.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic's declaration: the single place its name, partitions and retention are set."""

    name: str
    partitions: int
    record_types: tuple[str, ...]
    key: str
    description: str
    config: dict[str, str] = field(default_factory=dict)


_KEEP_FOREVER = {"retention.ms": "-1", "cleanup.policy": "delete"}

REFERENCE = TopicSpec(
    name="ballotstream.reference",
    partitions=3,
    record_types=("ElectionDeclared", "DivisionDeclared", "PartyDeclared", "CandidateRegistered", "ContestDeclared",
                  "Retraction"),
    key="the entity's id (election, division, party, candidate or contest id)",
    description="Elections, divisions, parties, candidates and contests, with their corrections.",
    config=_KEEP_FOREVER,
)
RESULTS = TopicSpec(
    name="ballotstream.results",
    # Tallies dominate the volume; 6 partitions let 2-6 consumers share a million-station election.
    partitions=6,
    record_types=("StationTally", "DivisionSummary", "SeatAllocation", "Retraction"),
    key="election_id|station_id (election_id|contest_id|station_id for a tally of a contest other than the "
    "election's default one), election_id|division_id or election_id|municipality_id",
    description="Official tallies per polling station, figures reported per division, seat allocations.",
    config=_KEEP_FOREVER,
)
OBSERVATIONS = TopicSpec(
    name="ballotstream.observations",
    partitions=3,
    record_types=("IncidentReported", "IncidentStatusChanged", "Retraction"),
    key="incident_id",
    description="Incident reports from observers, parties and journalists, and their verification status.",
    config=_KEEP_FOREVER,
)
NEWS = TopicSpec(
    name="ballotstream.news",
    partitions=1,
    record_types=("ArticlePublished", "Retraction"),
    key="article_id",
    description="News articles about the election, with the people, organisations and places they mention.",
    config=_KEEP_FOREVER,
)
DEAD_LETTER = TopicSpec(
    name="ballotstream.deadletter",
    partitions=1,
    record_types=("DeadLetter",),
    key="file:line",
    description="Every rejected input record, with its raw text, file, line and reason.",
    config={"retention.ms": str(90 * 24 * 3600 * 1000), "cleanup.policy": "delete"},
)
RELEASES = TopicSpec(
    name="ballotstream.releases",
    partitions=1,
    record_types=("ReleasePublished",),
    key="dataset",
    description="One event per published release; compacted, so the newest per dataset is always there.",
    config={"cleanup.policy": "compact"},
)

EVENT_TOPICS: tuple[TopicSpec, ...] = (REFERENCE, RESULTS, OBSERVATIONS, NEWS)
ALL_TOPICS: tuple[TopicSpec, ...] = (*EVENT_TOPICS, DEAD_LETTER, RELEASES)
TOPIC_BY_KIND: dict[str, TopicSpec] = {
    "reference": REFERENCE,
    "results": RESULTS,
    "observations": OBSERVATIONS,
    "news": NEWS,
}


def subject_name(topic: str, record_fullname: str) -> str:
    """TopicRecordNameStrategy: one subject per record type per topic, as Confluent clients expect."""
    return f"{topic}-{record_fullname}"
