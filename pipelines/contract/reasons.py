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
)

# File-level (not record-level) problem: the file cannot be read as any supported input format.
UNSUPPORTED_FILE = "unsupported_file"
