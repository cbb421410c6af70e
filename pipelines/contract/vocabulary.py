"""Enum vocabularies of the event model, and the fold's own status columns.

The event model's enums are read from the Avro schemas in ``schemas/`` (declared once, there); readers map a
symbol they do not know to the enum's default.
"""

from __future__ import annotations

from pipelines.contract.schemas import enum_symbols

SOURCE_KINDS = enum_symbols("SourceKind")
ELECTION_KINDS = enum_symbols("ElectionKind")
DIVISION_KINDS = enum_symbols("DivisionKind")
GENDERS = enum_symbols("Gender")
AGE_BANDS = enum_symbols("AgeBand")
EDUCATIONS = enum_symbols("Education")
TALLY_STATUSES = enum_symbols("TallyStatus")
METRICS = enum_symbols("Metric")
QUALIFIERS = enum_symbols("Qualifier")
INCIDENT_CATEGORIES = enum_symbols("IncidentCategory")
INCIDENT_STATUSES = enum_symbols("IncidentStatus")
CONTEST_KINDS = enum_symbols("ContestKind")
SELECTION_KINDS = enum_symbols("SelectionKind")
VOTE_METHODS = enum_symbols("VoteMethod")
# The kind of an election's default contest (docs/contests.md, rule 2): nothing declares what it is.
DEFAULT_CONTEST_KIND = "OTHER"
# A report starts RECEIVED until a status change says otherwise (docs/events.md, lifecycle).
INITIAL_INCIDENT_STATUS = "RECEIVED"

# Record types the fold understands. DeadLetter has no envelope and is never folded.
ELECTION_DECLARED = "ElectionDeclared"
DIVISION_DECLARED = "DivisionDeclared"
PARTY_DECLARED = "PartyDeclared"
CANDIDATE_REGISTERED = "CandidateRegistered"
CONTEST_DECLARED = "ContestDeclared"
STATION_TALLY = "StationTally"
DIVISION_SUMMARY = "DivisionSummary"
SEAT_ALLOCATION = "SeatAllocation"
INCIDENT_REPORTED = "IncidentReported"
INCIDENT_STATUS_CHANGED = "IncidentStatusChanged"
ARTICLE_PUBLISHED = "ArticlePublished"
RETRACTION = "Retraction"
DEAD_LETTER = "DeadLetter"
RELEASE_PUBLISHED = "ReleasePublished"
RECORD_TYPES: tuple[str, ...] = (
    ELECTION_DECLARED, DIVISION_DECLARED, PARTY_DECLARED, CANDIDATE_REGISTERED, CONTEST_DECLARED, STATION_TALLY,
    DIVISION_SUMMARY,
    SEAT_ALLOCATION, INCIDENT_REPORTED, INCIDENT_STATUS_CHANGED, ARTICLE_PUBLISHED, RETRACTION, RELEASE_PUBLISHED,
)

# Symbols that mean "not known" (docs/contests.md, CandidateRegistered v2): never a value of their own in a share.
UNKNOWN = "UNKNOWN"

# Status of each version in the `events` table.
STATUS_CURRENT = "current"  # the version the current tables show (for a Retraction: in effect)
STATUS_OUTDATED = "outdated"  # an older, uncorrected version of the same key (e.g. PRELIMINARY after FINAL)
STATUS_SUPERSEDED = "superseded"  # replaced by a correction naming it in `supersedes`
STATUS_RETRACTED = "retracted"  # removed by a Retraction
STATUS_DUPLICATE = "duplicate"  # the same event_id seen again at another log position
EVENT_STATUSES: tuple[str, ...] = (
    STATUS_CURRENT, STATUS_OUTDATED, STATUS_SUPERSEDED, STATUS_RETRACTED, STATUS_DUPLICATE,
)
# The statuses of the events listed in the ``noncurrent_events`` table (a duplicate copy is not an ``events`` row).
NONCURRENT_EVENT_STATUSES: tuple[str, ...] = (STATUS_OUTDATED, STATUS_SUPERSEDED, STATUS_RETRACTED)

CORRECTION_SUPERSEDE = "supersede"
CORRECTION_RETRACT = "retract"
CORRECTION_KINDS: tuple[str, ...] = (CORRECTION_SUPERSEDE, CORRECTION_RETRACT)

MENTION_PERSON = "person"
MENTION_ORGANISATION = "organisation"
MENTION_PLACE = "place"
MENTION_DIVISION = "division"
MENTION_KINDS: tuple[str, ...] = (MENTION_PERSON, MENTION_ORGANISATION, MENTION_PLACE, MENTION_DIVISION)

# Figures the fold computes from stations but no source reports (no Metric symbol exists for them).
METRIC_VALID_BALLOTS = "VALID_BALLOTS"
METRIC_INVALID_BALLOTS = "INVALID_BALLOTS"
METRIC_STATIONS = "STATIONS"
SUMMARY_METRICS: tuple[str, ...] = (
    *[m for m in METRICS if m != "OTHER"], METRIC_VALID_BALLOTS, METRIC_INVALID_BALLOTS, METRIC_STATIONS,
)
