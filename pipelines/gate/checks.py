"""The gate's checks, declared in code: which table, which rule, which expectation, blocking or not.

Each check is one Great Expectations expectation on one column of the table's *check frame*: the table's
own columns plus derived columns computed here with pyarrow (composite keys, differences such as
``valid + invalid - cast``, reference-resolution flags). Deriving them first keeps every check a single
column expectation, so GX's unexpected count is exactly the failing row count and its unexpected index
points at the failing row. References are resolved by flag rather than ``value_set`` because a value set of
a million station ids would be serialised into the suite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.contract import ids, vocabulary
from pipelines.errors import ConfigError
from pipelines.fold import tables
from pipelines.gate import names
from pipelines.settings import WITHHOLDABLE_RULES

# Expectation kinds -> GX 1.x expectation class names (imported lazily, see runner).
NOT_NULL = "ExpectColumnValuesToNotBeNull"
UNIQUE = "ExpectColumnValuesToBeUnique"
BETWEEN = "ExpectColumnValuesToBeBetween"
IN_SET = "ExpectColumnValuesToBeInSet"
MATCH_REGEX = "ExpectColumnValuesToMatchRegex"

KEY_COLUMN = "_key"
# Which file of a table a row of a check frame comes from (the incremental gate counts failures per file).
PART_COLUMN = "_part"


@dataclass(frozen=True)
class Reference:
    """``column`` must name a row of ``target_table``.``target_column`` (nulls are allowed)."""

    column: str
    target_table: str
    target_column: str

    @property
    def flag(self) -> str:
        """The derived boolean column: True when the reference resolves, null when it is null."""
        return f"_{self.column}_resolves"


@dataclass(frozen=True)
class CheckSpec:
    """One check: a single expectation on one column of a table's check frame."""

    table: str
    name: str
    description: str
    blocking: bool
    expectation: str
    column: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        """``table.name``, unique across the gate."""
        return f"{self.table}.{self.name}"


def _keys(table: str) -> list[CheckSpec]:
    cols = ", ".join(tables.KEYS[table])
    return [
        CheckSpec(table, names.KEY_PRESENT, f"every row has its key ({cols})", True, NOT_NULL, KEY_COLUMN),
        CheckSpec(table, names.KEY_UNIQUE, f"no two rows share a key ({cols})", True, UNIQUE, KEY_COLUMN),
    ]


def _vocab(table: str, name: str, column: str, symbols: tuple[str, ...], blocking: bool = True) -> CheckSpec:
    return CheckSpec(table, name, f"{column} is one of {len(symbols)} known symbols", blocking, IN_SET, column,
                     {"value_set": list(symbols)})


def _ref(table: str, name: str, ref: Reference, blocking: bool = True) -> CheckSpec:
    return CheckSpec(table, name, f"every {ref.column} names a row of {ref.target_table}.{ref.target_column}",
                     blocking, IN_SET, ref.flag, {"value_set": [True]})


def _zero(table: str, name: str, column: str, description: str, blocking: bool = True) -> CheckSpec:
    return CheckSpec(table, name, description, blocking, BETWEEN, column, {"min_value": 0, "max_value": 0})


def _non_negative(table: str, column: str, description: str, blocking: bool = True) -> CheckSpec:
    return CheckSpec(table, names.COUNTS_NON_NEGATIVE, description, blocking, BETWEEN, column, {"min_value": 0})


DIV = (tables.DIVISIONS, "division_id")
REFERENCES: dict[str, dict[str, Reference]] = {
    tables.DIVISIONS: {names.PARENT_RESOLVES: Reference("parent_id", *DIV),
                  names.MUNICIPALITY_RESOLVES: Reference("municipality_id", *DIV)},
    tables.CANDIDATES: {names.ELECTION_RESOLVES: Reference("election_id", tables.ELECTIONS, "election_id"),
                   names.PARTY_RESOLVES: Reference("party_id", tables.PARTIES, "party_id"),
                   names.MUNICIPALITY_RESOLVES: Reference("municipality_id", *DIV)},
    tables.CONTESTS: {names.ELECTION_RESOLVES: Reference("election_id", tables.ELECTIONS, "election_id"),
                      names.DISTRICT_RESOLVES: Reference("district_id", *DIV)},
    tables.CONTEST_SELECTIONS: {names.CONTEST_RESOLVES: Reference("contest_id", tables.CONTESTS, "contest_id")},
    tables.STATION_TURNOUT: {names.ELECTION_RESOLVES: Reference("election_id", tables.ELECTIONS, "election_id"),
                        names.STATION_RESOLVES: Reference("station_id", *DIV),
                        names.MUNICIPALITY_RESOLVES: Reference("municipality_id", *DIV)},
    tables.STATION_RESULTS: {names.STATION_RESOLVES: Reference("station_id", *DIV)},
    tables.MUNICIPALITY_RESULTS: {names.MUNICIPALITY_RESOLVES: Reference("municipality_id", *DIV),
                             names.CANDIDATE_RESOLVES: Reference("candidate_id", tables.CANDIDATES, "candidate_id")},
    tables.SEATS: {names.MUNICIPALITY_RESOLVES: Reference("municipality_id", *DIV),
              names.CANDIDATE_RESOLVES: Reference("candidate_id", tables.CANDIDATES, "candidate_id"),
              names.PARTY_RESOLVES: Reference("party_id", tables.PARTIES, "party_id")},
    tables.NATIONAL_SUMMARY: {names.ELECTION_RESOLVES: Reference("election_id", tables.ELECTIONS, "election_id")},
    tables.OBSERVATIONS: {names.DIVISION_RESOLVES: Reference("division_id", *DIV),
                     names.STATION_RESOLVES: Reference("station_id", *DIV)},
    tables.OBSERVATIONS_BY_DIVISION: {names.DIVISION_RESOLVES: Reference("division_id", *DIV)},
    tables.NEWS: {names.ELECTION_RESOLVES: Reference("election_id", tables.ELECTIONS, "election_id")},
    tables.NEWS_MENTIONS: {names.ARTICLE_RESOLVES: Reference("article_id", tables.NEWS, "article_id")},
}
# Third parties (observers, media) may name divisions or elections we have not declared: worth a warning,
# not a reason to withhold a release.
NON_BLOCKING_REFERENCE_TABLES = frozenset({tables.OBSERVATIONS, tables.OBSERVATIONS_BY_DIVISION, tables.NEWS})

# Derived columns (computed in pipelines.gate.frames).
COUNTS_MIN = "_counts_min"
CAST_MINUS_REGISTERED = "_cast_minus_registered"
VALID_PLUS_INVALID_MINUS_CAST = "_valid_plus_invalid_minus_cast"
VOTES_MINUS_VALID = "_votes_minus_valid"
TOLERANCE_EXCESS = "_tolerance_excess"
KEY_MISSING_ROWS = "_key_missing_rows"
DUPLICATE_CANDIDATE_ROWS = "_duplicate_candidate_rows"
UNRESOLVED_CANDIDATE_ROWS = "_unresolved_candidate_rows"
VOTES_MIN = "votes_min"
VOTES_EXCESS = "_votes_minus_cast_times_allowed"
SELECTION_DECLARED_FLAG = "_selection_declared"
METHODS_MINUS_VOTES = "_methods_minus_votes"
REPORTING_MINUS_EXPECTED = "_reporting_minus_expected"


def _specific(table: str) -> list[CheckSpec]:
    # Long: a declaration, one case per table; splitting it would scatter the rules the gate applies.
    T = table
    match table:
        case tables.EVENTS:
            return [_vocab(T, names.RECORD_TYPE_IN_VOCABULARY, "record_type", vocabulary.RECORD_TYPES),
                    _vocab(T, names.SOURCE_KIND_IN_VOCABULARY, "source_kind", vocabulary.SOURCE_KINDS)]
        case tables.NONCURRENT_EVENTS:
            return [_vocab(T, names.STATUS_IN_VOCABULARY, "status", vocabulary.NONCURRENT_EVENT_STATUSES)]
        case tables.CORRECTIONS:
            return [_vocab(T, names.KIND_IN_VOCABULARY, "kind", vocabulary.CORRECTION_KINDS)]
        case tables.ELECTIONS:
            return [CheckSpec(T, names.ELECTION_ID_FORMAT, "election_id follows kind.country[.x].YYYY-MM-DD", True,
                              MATCH_REGEX, "election_id", {"regex": ids.anchored(ids.ELECTION_ID_RE)}),
                    _vocab(T, names.KIND_IN_VOCABULARY, "kind", vocabulary.ELECTION_KINDS)]
        case tables.DIVISIONS:
            return [CheckSpec(T, names.DIVISION_ID_FORMAT, "division_id is an Open Civic Data id", True, MATCH_REGEX,
                              "division_id", {"regex": ids.anchored(ids.DIVISION_ID_RE)}),
                    _vocab(T, names.KIND_IN_VOCABULARY, "kind", vocabulary.DIVISION_KINDS)]
        case tables.CANDIDATES:
            return [_vocab(T, names.GENDER_IN_VOCABULARY, "gender", vocabulary.GENDERS),
                    _vocab(T, names.AGE_BAND_IN_VOCABULARY, "age_band", vocabulary.AGE_BANDS),
                    _vocab(T, names.EDUCATION_IN_VOCABULARY, "education", vocabulary.EDUCATIONS)]
        case tables.CONTESTS:
            return [CheckSpec(T, names.CONTEST_ID_FORMAT, "contest_id follows type.country[.x].YYYY-MM-DD", True,
                              MATCH_REGEX, "contest_id", {"regex": ids.anchored(ids.CONTEST_ID_RE)}),
                    _vocab(T, names.KIND_IN_VOCABULARY, "kind", vocabulary.CONTEST_KINDS)]
        case tables.CONTEST_SELECTIONS:
            return [_vocab(T, names.KIND_IN_VOCABULARY, "kind", vocabulary.SELECTION_KINDS)]
        case tables.CONTEST_RESULTS:
            return [
                _non_negative(T, COUNTS_MIN, "votes and every vote-method figure >= 0"),
                CheckSpec(T, names.SELECTION_DECLARED, "at station level, the selection is one the contest "
                          "declares (when it declares any)", True, IN_SET, SELECTION_DECLARED_FLAG,
                          {"value_set": [True]}),
                _zero(T, names.METHODS_SUM_EQ_VOTES, METHODS_MINUS_VOTES,
                      "at station level, the vote-method figures sum to votes (where every reported one is known)"),
            ]
        case tables.CONTEST_SUMMARY:
            return [
                CheckSpec(T, names.TURNOUT_IN_RANGE, "turnout within [0, 1] where known", True, BETWEEN,
                          "turnout", {"min_value": 0, "max_value": 1}),
                CheckSpec(T, names.REPORTING_LE_EXPECTED, "stations reporting <= stations expected where known",
                          True, BETWEEN, REPORTING_MINUS_EXPECTED, {"max_value": 0}),
            ]
        case tables.STATION_TURNOUT:
            return [
                _non_negative(T, COUNTS_MIN, "every reported count (registered, cast, valid, invalid, over, under, "
                                             "blank, write-ins) is >= 0"),
                CheckSpec(T, names.CAST_LE_REGISTERED, "ballots cast <= registered voters", True, BETWEEN,
                          CAST_MINUS_REGISTERED, {"max_value": 0}),
                _zero(T, names.VALID_PLUS_INVALID_EQ_CAST, VALID_PLUS_INVALID_MINUS_CAST,
                      "valid + invalid ballots = ballots cast"),
                CheckSpec(T, names.TURNOUT_IN_RANGE, "turnout (cast / registered) within [0, 1]", True, BETWEEN,
                          "turnout", {"min_value": 0, "max_value": 1}),
                _vocab(T, names.STATUS_IN_VOCABULARY, "status", vocabulary.TALLY_STATUSES),
                CheckSpec(T, names.VOTES_LE_CAST_TIMES_ALLOWED,
                          "sum(votes) + over + under + blank <= cast x votes_allowed, where all are known", True,
                          BETWEEN, VOTES_EXCESS, {"max_value": 0}),
            ]
        case tables.STATION_RESULTS:
            # Validated per tally (see frames.station_frame): failing counts are tallies, not rows.
            return [
                _zero(T, names.KEY_PRESENT, KEY_MISSING_ROWS,
                      "per tally: no row lacks election, contest, station or selection"),
                _zero(T, names.KEY_UNIQUE, DUPLICATE_CANDIDATE_ROWS, "per tally: each selection appears once"),
                _non_negative(T, VOTES_MIN, "per tally: every selection's votes >= 0"),
                _zero(T, names.VOTES_SUM_EQ_VALID, VOTES_MINUS_VALID,
                      "per tally: sum of votes = valid ballots in station_turnout (where valid is known)"),
                _zero(T, names.CANDIDATE_RESOLVES, UNRESOLVED_CANDIDATE_ROWS,
                      "per tally: every candidate selection names a row of candidates.candidate_id"),
            ]
        case tables.MUNICIPALITY_RESULTS:
            return [_non_negative(T, "votes", "votes >= 0")]
        case tables.NATIONAL_SUMMARY:
            return [
                CheckSpec(T, names.REPORTED_MATCHES_COMPUTED,
                          "figures reported for the country match those computed from stations, within the "
                          "tolerance and in the direction the qualifier allows", True, BETWEEN, TOLERANCE_EXCESS,
                          {"max_value": 0}),
                _vocab(T, names.QUALIFIER_IN_VOCABULARY, "qualifier", vocabulary.QUALIFIERS),
                _vocab(T, names.METRIC_IN_VOCABULARY, "metric", vocabulary.SUMMARY_METRICS),
            ]
        case tables.OBSERVATIONS:
            return [_non_negative(T, "count", "occurrence count >= 0"),
                    _vocab(T, names.CATEGORY_IN_VOCABULARY, "category", vocabulary.INCIDENT_CATEGORIES),
                    _vocab(T, names.STATUS_IN_VOCABULARY, "status", vocabulary.INCIDENT_STATUSES),
                    _vocab(T, names.REPORTER_KIND_IN_VOCABULARY, "reporter_kind", vocabulary.SOURCE_KINDS)]
        case tables.OBSERVATIONS_BY_DIVISION:
            return [_non_negative(T, COUNTS_MIN, "incidents and occurrences >= 0"),
                    _vocab(T, names.CATEGORY_IN_VOCABULARY, "category", vocabulary.INCIDENT_CATEGORIES)]
        case tables.NEWS_MENTIONS:
            return [_vocab(T, names.KIND_IN_VOCABULARY, "kind", vocabulary.MENTION_KINDS)]
    return []


def checks_for_table(table: str) -> tuple[CheckSpec, ...]:
    """Every check of ``table``, in a stable order (keys, table-specific rules, references)."""
    if table not in tables.SCHEMAS:
        raise ConfigError(f"unknown table {table!r}; known: {', '.join(tables.TABLE_NAMES)}")
    specs = [] if table == tables.STATION_RESULTS else _keys(table)
    specs += _specific(table)
    for name, ref in REFERENCES.get(table, {}).items():
        if not any(s.name == name for s in specs):
            specs.append(_ref(table, name, ref, blocking=table not in NON_BLOCKING_REFERENCE_TABLES))
    return tuple(specs)


ALL_CHECKS: tuple[CheckSpec, ...] = tuple(s for name in tables.TABLE_NAMES for s in checks_for_table(name))

# The rules BALLOTSTREAM_GATE_WITHHOLD may name (declared in pipelines.settings, below the gate): each must be a
# blocking rule of a table whose failing rows name a tally, or withholding could not find its units.
WITHHOLD_TABLES = frozenset({tables.STATION_TURNOUT, tables.STATION_RESULTS, tables.CONTEST_RESULTS})
_unknown = sorted(WITHHOLDABLE_RULES - {s.qualified_name for s in ALL_CHECKS
                                        if s.blocking and s.table in WITHHOLD_TABLES})
if _unknown:
    raise ConfigError(f"WITHHOLDABLE_RULES names rules the gate does not have: {', '.join(_unknown)}")


# What a table's check frame reads from other tables besides its REFERENCES (see ``pipelines.gate.frames``).
_FRAME_NEEDS: dict[str, dict[str, tuple[str, ...]]] = {
    tables.STATION_RESULTS: {tables.CANDIDATES: ("candidate_id",),
                             tables.STATION_TURNOUT: ("election_id", "contest_id", "station_id", "valid_ballots")},
    tables.STATION_TURNOUT: {tables.STATION_RESULTS: ("election_id", "contest_id", "station_id", "votes"),
                             tables.CONTESTS: ("contest_id", "votes_allowed")},
    tables.CONTEST_RESULTS: {tables.CONTEST_SELECTIONS: ("contest_id", "selection_id")},
}
# The only columns of a table its own checks read, where that is less than all of them: station_results is the
# largest table (~12.5M rows at a million stations) and its check frame is per station.
OWN_COLUMNS: dict[str, tuple[str, ...]] = {
    tables.STATION_RESULTS: ("election_id", "contest_id", "station_id", "candidate_id", "selection_kind", "votes",
                             *tables.TRACE_COLUMNS),
}


def context_needs(table: str) -> dict[str, tuple[str, ...]]:
    """The other tables, and which of their columns, that ``table``'s checks read."""
    needs: dict[str, set[str]] = {}
    for ref in REFERENCES.get(table, {}).values():
        if ref.target_table != table:  # a table resolving into itself is checked against itself
            needs.setdefault(ref.target_table, set()).add(ref.target_column)
    for other, columns in _FRAME_NEEDS.get(table, {}).items():
        needs.setdefault(other, set()).update(columns)
    return {other: tuple(sorted(columns)) for other, columns in sorted(needs.items())}
