"""Why an input record was rejected: the reason codes on the dead-letter topic, declared once."""

from __future__ import annotations

MALFORMED_JSON = "malformed_json"
MALFORMED_CSV = "malformed_csv"
UNKNOWN_RECORD_TYPE = "unknown_record_type"
WRONG_KIND = "wrong_kind"
MISSING_FIELD = "missing_field"
UNKNOWN_FIELD = "unknown_field"
WRONG_TYPE = "wrong_type"
UNKNOWN_ENUM_SYMBOL = "unknown_enum_symbol"
INVALID_ID = "invalid_id"
NEGATIVE_COUNT = "negative_count"
UNKNOWN_REFERENCE = "unknown_reference"
# Bytes that are not UTF-8 (the reason names the line's byte offset).
INVALID_ENCODING = "invalid_encoding"
# A JSON line or CSV station over BALLOTSTREAM_INGEST_MAX_RECORD_BYTES.
RECORD_TOO_LARGE = "record_too_large"
# JSON nested deeper than BALLOTSTREAM_INGEST_MAX_DEPTH.
TOO_DEEPLY_NESTED = "too_deeply_nested"
# A JSON object naming one key twice (which one would win is not for ingest to guess).
DUPLICATE_KEY = "duplicate_key"
# A control character (NUL...) in a string field; ids, keys, URLs and timestamps allow none, text allows tab
# and line ends.
CONTROL_CHARACTER = "control_character"
# A contest id that does not share its election's type prefix and date (docs/contests.md, "Identifiers"), on a
# ContestDeclared or a StationTally.
CONTEST_ELECTION_MISMATCH = "contest_election_mismatch"

REASON_CODES: tuple[str, ...] = (
    MALFORMED_JSON,
    MALFORMED_CSV,
    UNKNOWN_RECORD_TYPE,
    WRONG_KIND,
    MISSING_FIELD,
    UNKNOWN_FIELD,
    WRONG_TYPE,
    UNKNOWN_ENUM_SYMBOL,
    INVALID_ID,
    NEGATIVE_COUNT,
    UNKNOWN_REFERENCE,
    INVALID_ENCODING,
    RECORD_TOO_LARGE,
    TOO_DEEPLY_NESTED,
    DUPLICATE_KEY,
    CONTROL_CHARACTER,
    CONTEST_ELECTION_MISMATCH,
)

# File-level (not record-level) problem: the file cannot be read as any supported input format.
UNSUPPORTED_FILE = "unsupported_file"
# File-level: the file could not be opened or read (missing, a directory, no permission); its dead letter has
# line 0.
UNREADABLE_FILE = "unreadable_file"
