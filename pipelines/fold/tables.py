"""Names, column order, types and keys of every table the fold produces, declared once.

Every table's rows are in its declared ``ORDER`` (its key, or for the history tables their log order), and its
columns follow the schema here, so two folds of one snapshot write byte-identical Parquet. Rows that come from one
event carry that event's ``event_id``, ``topic``, ``partition`` and ``offset``; aggregate tables are traceable
through their key columns instead.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pyarrow as pa

EVENTS = "events"
NONCURRENT_EVENTS = "noncurrent_events"
CORRECTIONS = "corrections"
ELECTIONS = "elections"
DIVISIONS = "divisions"
PARTIES = "parties"
CANDIDATES = "candidates"
CONTESTS = "contests"
CONTEST_SELECTIONS = "contest_selections"
CONTEST_RESULTS = "contest_results"
CONTEST_SUMMARY = "contest_summary"
STATION_RESULTS = "station_results"
STATION_TURNOUT = "station_turnout"
MUNICIPALITY_RESULTS = "municipality_results"
SEATS = "seats"
NATIONAL_SUMMARY = "national_summary"
OBSERVATIONS = "observations"
OBSERVATIONS_BY_DIVISION = "observations_by_division"
NEWS = "news"
NEWS_MENTIONS = "news_mentions"
WITHHELD = "withheld"

TABLE_NAMES: tuple[str, ...] = (
    EVENTS, NONCURRENT_EVENTS, CORRECTIONS, ELECTIONS, DIVISIONS, PARTIES, CANDIDATES, CONTESTS, CONTEST_SELECTIONS,
    STATION_RESULTS, STATION_TURNOUT, CONTEST_RESULTS, CONTEST_SUMMARY, MUNICIPALITY_RESULTS, SEATS, NATIONAL_SUMMARY,
    OBSERVATIONS, OBSERVATIONS_BY_DIVISION, NEWS, NEWS_MENTIONS, WITHHELD,
)

TIMESTAMP = pa.timestamp("ms", tz="UTC")
# station_results has ~12 rows per station; dictionary columns keep a million-station election in memory
# (plain strings would need ~2.5 GB for the ids alone). Parquet dictionary-encodes them anyway.
DICT_STRING = pa.dictionary(pa.int32(), pa.string())

# contest_results levels: a station's tally, a division it composes into, the whole contest.
LEVEL_STATION, LEVEL_DIVISION, LEVEL_CONTEST = "station", "division", "contest"
LEVELS: tuple[str, ...] = (LEVEL_STATION, LEVEL_DIVISION, LEVEL_CONTEST)
# contest_results' vote-method columns, in VoteMethod order (pipelines.contract.vocabulary.VOTE_METHODS).
METHOD_COLUMNS: tuple[str, ...] = ("votes_election_day", "votes_early", "votes_mail", "votes_absentee",
                                   "votes_provisional", "votes_other")

TRACE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("event_id", pa.string()),
    pa.field("topic", pa.string()),
    pa.field("partition", pa.int32()),
    pa.field("offset", pa.int64()),
)
TRACE_COLUMNS: tuple[str, ...] = tuple(f.name for f in TRACE_FIELDS)


def _schema(*fields: tuple[str, pa.DataType], trace: bool = True) -> pa.Schema:
    return pa.schema([pa.field(name, typ) for name, typ in fields] + (list(TRACE_FIELDS) if trace else []))


S = pa.string()
SCHEMAS: dict[str, pa.Schema] = {
    EVENTS: pa.schema([
        ("event_id", S), ("record_type", S), ("key", S), ("topic", S), ("partition", pa.int32()),
        ("offset", pa.int64()), ("occurred_at", TIMESTAMP), ("recorded_at", TIMESTAMP),
        ("source_organisation", S), ("source_kind", S), ("source_url", S), ("synthetic", pa.bool_()),
        ("supersedes_event_id", S), ("schema_id", pa.int32()), ("deliveries", pa.int32()),
    ]),
    # An event's status is not a column of ``events``: a correction would change the row of the event it
    # supersedes, among the events of its time, and rewrite their files (at a million stations, 0.43 MB of a
    # 10,000-tally batch's 4.7 MB). So ``events`` only grows, and the events no longer current are listed here.
    NONCURRENT_EVENTS: pa.schema([
        ("event_id", S), ("status", S), ("topic", S), ("partition", pa.int32()), ("offset", pa.int64()),
    ]),
    CORRECTIONS: pa.schema([
        ("correction_event_id", S), ("target_event_id", S), ("kind", S), ("reason", S), ("key", S),
        ("target_record_type", S), ("target_found", pa.bool_()), ("status", S), ("recorded_at", TIMESTAMP),
        ("topic", S), ("partition", pa.int32()), ("offset", pa.int64()),
    ]),
    ELECTIONS: _schema(
        ("election_id", S), ("name", S), ("date", pa.date32()), ("kind", S), ("country", S),
        ("seats_at_stake", pa.int32()),
    ),
    DIVISIONS: _schema(
        ("division_id", S), ("name", S), ("kind", S), ("parent_id", S), ("election_id", S),
        ("municipality_id", S), ("seats", pa.int32()), ("label", S), ("member_of", pa.list_(S)),
    ),
    PARTIES: _schema(("party_id", S), ("name", S), ("abbreviation", S)),
    CANDIDATES: _schema(
        ("candidate_id", S), ("election_id", S), ("name", S), ("party_id", S), ("municipality_id", S),
        ("gender", S), ("birth_year", pa.int32()), ("age_band", S), ("education", S),
    ),
    CONTESTS: _schema(
        ("contest_id", S), ("election_id", S), ("name", S), ("kind", S), ("office", S), ("district_id", S),
        ("number_elected", pa.int32()), ("votes_allowed", pa.int32()), ("selections", pa.int32()),
    ),
    CONTEST_SELECTIONS: _schema(
        ("contest_id", S), ("selection_id", S), ("kind", S), ("label", S), ("candidate_id", S), ("party_id", S),
        ("running_mates", pa.list_(S)),
    ),
    # candidate_id is the selection voted for: a candidate, party, option or write-in id (docs/contests.md).
    STATION_RESULTS: pa.schema([
        ("election_id", DICT_STRING), ("contest_id", DICT_STRING), ("station_id", DICT_STRING),
        ("municipality_id", DICT_STRING), ("candidate_id", DICT_STRING), ("selection_kind", DICT_STRING),
        ("party_id", DICT_STRING), ("votes", pa.int64()),
        ("event_id", DICT_STRING), ("topic", DICT_STRING), ("partition", pa.int32()), ("offset", pa.int64()),
    ]),
    STATION_TURNOUT: _schema(
        ("election_id", S), ("contest_id", S), ("station_id", S), ("municipality_id", S), ("status", S),
        ("registered_voters", pa.int64()), ("ballots_cast", pa.int64()), ("valid_ballots", pa.int64()),
        ("invalid_ballots", pa.int64()), ("overvotes", pa.int64()), ("undervotes", pa.int64()),
        ("blank_votes", pa.int64()), ("write_ins", pa.int64()), ("turnout", pa.float64()),
    ),
    # As large as station_results at level station: dictionary strings, like it.
    CONTEST_RESULTS: _schema(
        ("election_id", DICT_STRING), ("contest_id", DICT_STRING), ("selection_id", DICT_STRING),
        ("selection_kind", DICT_STRING), ("level", DICT_STRING), ("unit_id", DICT_STRING), ("votes", pa.int64()),
        *[(c, pa.int64()) for c in METHOD_COLUMNS], ("methods_unknown", pa.int64()), ("stations", pa.int64()),
        trace=False,
    ),
    CONTEST_SUMMARY: _schema(
        ("election_id", S), ("contest_id", S), ("kind", S), ("stations_reporting", pa.int64()),
        ("stations_expected", pa.int64()), ("stations_withheld", pa.int64()),
        ("registered_voters", pa.int64()), ("registered_known", pa.int64()),
        ("ballots_cast", pa.int64()), ("ballots_cast_known", pa.int64()), ("turnout", pa.float64()),
        ("overvotes", pa.int64()), ("undervotes", pa.int64()), ("blank_votes", pa.int64()),
        ("write_ins", pa.int64()), ("total_votes", pa.int64()), ("winners", pa.list_(S)), ("margin", pa.int64()),
        trace=False,
    ),
    MUNICIPALITY_RESULTS: _schema(
        ("election_id", S), ("municipality_id", S), ("candidate_id", S), ("party_id", S), ("votes", pa.int64()),
        ("stations", pa.int64()), ("rank", pa.int32()), ("seats", pa.int32()), ("elected_by_votes", pa.bool_()),
        ("elected", pa.bool_()), trace=False,
    ),
    SEATS: _schema(
        ("election_id", S), ("municipality_id", S), ("candidate_id", S), ("party_id", S),
        ("total_seats", pa.int32()),
    ),
    NATIONAL_SUMMARY: _schema(
        ("election_id", S), ("metric", S), ("computed", pa.float64()), ("known", pa.int64()),
        ("reported", pa.float64()),
        ("qualifier", S), ("difference", pa.float64()), ("note", S), ("division_id", S),
    ),
    OBSERVATIONS: _schema(
        ("incident_id", S), ("election_id", S), ("category", S), ("division_id", S), ("station_id", S),
        ("reporter", S), ("reporter_kind", S), ("description", S), ("evidence_urls", pa.list_(S)),
        ("count", pa.int32()), ("status", S), ("status_note", S), ("status_event_id", S),
        ("occurred_at", TIMESTAMP), ("recorded_at", TIMESTAMP),
    ),
    OBSERVATIONS_BY_DIVISION: _schema(
        ("election_id", S), ("division_id", S), ("category", S), ("incidents", pa.int64()),
        ("occurrences", pa.int64()), trace=False,
    ),
    NEWS: _schema(
        ("article_id", S), ("outlet", S), ("url", S), ("headline", S), ("published_at", TIMESTAMP),
        ("language", S), ("summary", S), ("election_id", S), ("statements", pa.int32()),
    ),
    NEWS_MENTIONS: _schema(("article_id", S), ("kind", S), ("value", S)),
    # Tallies left out of every other table because a gate rule configured to withhold (not block) failed on
    # them (BALLOTSTREAM_GATE_WITHHOLD); the trace names the withheld tally's event.
    WITHHELD: _schema(("election_id", S), ("contest_id", S), ("station_id", S), ("rule", S), ("reason", S)),
}

# The key of each table: unique and never null.
KEYS: dict[str, tuple[str, ...]] = {
    EVENTS: ("event_id",),
    NONCURRENT_EVENTS: ("event_id",),
    CORRECTIONS: ("correction_event_id",),
    ELECTIONS: ("election_id",),
    DIVISIONS: ("division_id",),
    PARTIES: ("party_id",),
    CANDIDATES: ("candidate_id",),
    CONTESTS: ("contest_id",),
    CONTEST_SELECTIONS: ("contest_id", "selection_id"),
    STATION_RESULTS: ("election_id", "contest_id", "station_id", "candidate_id"),
    STATION_TURNOUT: ("election_id", "contest_id", "station_id"),
    CONTEST_RESULTS: ("contest_id", "level", "unit_id", "selection_id"),
    CONTEST_SUMMARY: ("contest_id",),
    MUNICIPALITY_RESULTS: ("election_id", "municipality_id", "candidate_id"),
    SEATS: ("election_id", "municipality_id", "candidate_id"),
    NATIONAL_SUMMARY: ("election_id", "metric"),
    OBSERVATIONS: ("incident_id",),
    OBSERVATIONS_BY_DIVISION: ("election_id", "division_id", "category"),
    NEWS: ("article_id",),
    NEWS_MENTIONS: ("article_id", "kind", "value"),
    WITHHELD: ("election_id", "contest_id", "station_id", "rule"),
}

# A row's place in the event log: topic by topic, and a topic's partitions merged position by position (offset,
# then partition). A partition's events are appended at offsets past every offset it holds, and a topic's
# partitions grow alike, so new events sort together near the end of their topic, not at the end of each
# partition's run. Topic first: with the offset first, every offset of the results topic sat between the same
# offsets of the reference topic (a division per station), so a batch's new events and the events its corrections
# supersede were one row in about nine of the files they rewrote (at a million stations, 1.4 MB of events files
# for 10,000 tallies). Changing it changes how files are cut (``scoped.cutting``).
LOG_ORDER: tuple[str, ...] = ("topic", "offset", "partition")

# The order of each table's rows: its key, except for the history tables (events, noncurrent_events and
# corrections), kept in log order so that new events land together, in the files at their offsets (by key, random
# event ids, they landed in every file). The row's own event id ends theirs, so two rows at one log position
# (records of tests; never two Kafka records) still sort one way.
ORDER: dict[str, tuple[str, ...]] = {
    **KEYS, EVENTS: (*LOG_ORDER, "event_id"), NONCURRENT_EVENTS: (*LOG_ORDER, "event_id"),
    CORRECTIONS: (*LOG_ORDER, "correction_event_id"),
}

# Where a file of a large table may start (pipelines.release.parquet.chunk_bounds): a column of its ORDER whose
# rows are contiguous in that order and whose values arrive together (a station's tally; a division's composed
# rows; the events at one offset of a topic).
FILE_SPLIT_COLUMNS: dict[str, str] = {
    EVENTS: "offset", NONCURRENT_EVENTS: "offset", CORRECTIONS: "offset", ELECTIONS: "election_id",
    DIVISIONS: "division_id", PARTIES: "party_id", CANDIDATES: "candidate_id", CONTESTS: "contest_id",
    CONTEST_SELECTIONS: "contest_id", STATION_RESULTS: "station_id", STATION_TURNOUT: "station_id",
    CONTEST_RESULTS: "unit_id", CONTEST_SUMMARY: "contest_id", MUNICIPALITY_RESULTS: "municipality_id",
    SEATS: "municipality_id", NATIONAL_SUMMARY: "election_id", OBSERVATIONS: "incident_id",
    OBSERVATIONS_BY_DIVISION: "division_id", NEWS: "article_id", NEWS_MENTIONS: "article_id", WITHHELD: "station_id",
}


class FileWidth(NamedTuple):
    """About how many bytes of Parquet a table's rows take, as ``pipelines.release.parquet`` writes them: per run
    of one ``FILE_SPLIT_COLUMNS`` value, and per row. A run's own columns (station_results' tally: its event id,
    station and offset, repeated on each of its rows but stored about once) cost far more than each extra row."""

    run: float
    row: float


# Each table's FileWidth, declared rather than measured on the table, so that where its files are cut depends on
# nothing that moves as results arrive (pipelines.release.parquet.chunk_bounds). Fitted to Parquet written from
# three synth elections: 1,000,000 stations x 1 contest; 100,000 x 3 contests with faults; 100,000 x 1 contest
# x 4 candidates (station_results: 45, 42 and 46 bytes per tally of 12.5, 6.2 and 4 rows; a per-row width alone
# was off by 3x). Tables of a few rows in every one of them (elections, parties, national_summary, news,
# news_mentions) are measured with their footers, too wide: they stay one file at any size an election reaches.
# noncurrent_events, a few rows in them, was measured on 50,000 rows of random event ids (22 of its 25 bytes).
FILE_WIDTHS: dict[str, FileWidth] = {
    EVENTS: FileWidth(0, 25.5), NONCURRENT_EVENTS: FileWidth(0, 25), CORRECTIONS: FileWidth(0, 57),
    ELECTIONS: FileWidth(0, 1140), DIVISIONS: FileWidth(0, 26), PARTIES: FileWidth(0, 240),
    CANDIDATES: FileWidth(0, 31), CONTESTS: FileWidth(0, 36), CONTEST_SELECTIONS: FileWidth(50, 2.5),
    STATION_RESULTS: FileWidth(42, 0.3), STATION_TURNOUT: FileWidth(0, 36), CONTEST_RESULTS: FileWidth(12, 0.75),
    CONTEST_SUMMARY: FileWidth(0, 45), MUNICIPALITY_RESULTS: FileWidth(22, 2.8), SEATS: FileWidth(31, 5.4),
    NATIONAL_SUMMARY: FileWidth(0, 100), OBSERVATIONS: FileWidth(0, 65), OBSERVATIONS_BY_DIVISION: FileWidth(0, 7),
    NEWS: FileWidth(0, 1600), NEWS_MENTIONS: FileWidth(0, 300), WITHHELD: FileWidth(0, 32),
}

# Tables whose files are not BALLOTSTREAM_TABLE_FILE_BYTES but a multiple of it:
# - a quarter, for the aggregates of a municipality or a contest, of which a batch of tallies changes a few rows
#   that lie together (one per municipality or contest it touches), so each changed row costs a whole file. At a
#   million stations a 10,000-tally batch of one region changed 930 of municipality_results' 65,329 rows in one
#   0.34 MB file, and 76 of contest_summary's 3,681 in one of 0.17 MB. Both tables are under 1 MB there: four
#   times as many files add about a dozen to the listings.
# - four times, for the reference tables a batch of tallies never changes (``fold.scope.SCOPED_BY`` names the
#   tables it does): they change only with the reference data, and every file of every table is listed in the
#   manifest, catalog.json and datapackage.json each publish uploads (about 0.75 KB a file). At a million stations
#   divisions (34 MB) and candidates (4 MB) were 137 of a release's 875 files.
FILE_BYTES_SCALE: dict[str, float] = {
    MUNICIPALITY_RESULTS: 0.25, CONTEST_SUMMARY: 0.25,
    DIVISIONS: 4, CANDIDATES: 4, CONTEST_SELECTIONS: 4, PARTIES: 4, ELECTIONS: 4, SEATS: 4,
}


def file_layout(name: str, file_bytes: int) -> dict[str, Any]:
    """How table ``name``'s files are cut (``parquet.write_table_files``' ``split_column``, ``width`` and
    ``file_bytes``) when tables are cut into files of about ``file_bytes`` (``FILE_BYTES_SCALE`` times it for some)."""
    return {"split_column": FILE_SPLIT_COLUMNS[name], "width": FILE_WIDTHS[name],
            "file_bytes": max(1, round(file_bytes * FILE_BYTES_SCALE.get(name, 1.0)))}


# The column naming the event a row comes from (None: an aggregate, traced by its key).
EVENT_ID_COLUMNS: dict[str, str | None] = {
    name: ("correction_event_id" if name == CORRECTIONS else "event_id" if "event_id" in SCHEMAS[name].names
           else None)
    for name in TABLE_NAMES
}


def empty_table(name: str) -> pa.Table:
    """An empty table with the declared schema of ``name``."""
    return SCHEMAS[name].empty_table()
