"""Identifier formats (see docs/events.md, "Identifiers"): predicates for hot loops, validators for callers.

The predicates are plain ``re.fullmatch`` calls on patterns compiled once; the validators raise
:class:`~pipelines.errors.InputError` with reason code ``invalid_id`` and the field name.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pipelines.contract.reasons import INVALID_ID
from pipelines.errors import InputError

ELECTION_ID_RE = re.compile(r"[a-z]+\.[a-z]{2}(?:\.[a-z0-9-]+)*\.\d{4}-\d{2}-\d{2}")
DIVISION_ID_RE = re.compile(r"ocd-division/country:[a-z]{2}(?:/[a-z_]+:[a-z0-9_.~-]+)*")
# The division of a whole country (where national figures are reported): a division id with no sub-division.
COUNTRY_DIVISION_RE = re.compile(r"ocd-division/country:[a-z]{2}")
SLUG = r"[a-z0-9][a-z0-9_.-]*"
PARTY_PREFIX = "party:"
CANDIDATE_PREFIX = "candidate:"
INCIDENT_PREFIX = "incident:"
ARTICLE_PREFIX = "article:"
PARTY_ID_RE = re.compile(rf"{PARTY_PREFIX}{SLUG}")
CANDIDATE_ID_RE = re.compile(rf"{CANDIDATE_PREFIX}{SLUG}")
INCIDENT_ID_RE = re.compile(rf"{INCIDENT_PREFIX}{SLUG}")
ARTICLE_ID_RE = re.compile(rf"{ARTICLE_PREFIX}{SLUG}")
# Canonical lower-case 8-4-4-4-12 form only, so one event has exactly one spelling of its id.
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

IdCheck = Callable[[str], bool]


def anchored(pattern: re.Pattern[str]) -> str:
    """``pattern`` as ``^...$`` text, for tools that search rather than match whole values (Great Expectations).

    Fine for these patterns, none of which has a top-level ``|``.
    """
    return f"^{pattern.pattern}$"


def _predicate(pattern: re.Pattern[str]) -> IdCheck:
    match = pattern.fullmatch
    return lambda value: match(value) is not None


is_election_id: IdCheck = _predicate(ELECTION_ID_RE)
is_division_id: IdCheck = _predicate(DIVISION_ID_RE)
is_party_id: IdCheck = _predicate(PARTY_ID_RE)
is_candidate_id: IdCheck = _predicate(CANDIDATE_ID_RE)
is_incident_id: IdCheck = _predicate(INCIDENT_ID_RE)
is_article_id: IdCheck = _predicate(ARTICLE_ID_RE)
is_uuid: IdCheck = _predicate(UUID_RE)

# What each id-bearing field (or array of ids) must look like. Used by the ingest converter, so a field
# named here is checked wherever it appears in any record type.
ID_KINDS: dict[str, tuple[str, IdCheck]] = {
    "election_id": ("election id", is_election_id),
    "division_id": ("division id", is_division_id),
    "station_id": ("division id", is_division_id),
    "municipality_id": ("division id", is_division_id),
    "parent_id": ("division id", is_division_id),
    "division_ids": ("division id", is_division_id),
    "party_id": ("party id", is_party_id),
    "candidate_id": ("candidate id", is_candidate_id),
    "incident_id": ("incident id", is_incident_id),
    "article_id": ("article id", is_article_id),
}


def _validator(what: str, check: IdCheck) -> Callable[[str, str], str]:
    def validate(value: str, field: str) -> str:
        if not isinstance(value, str) or not check(value):
            raise InputError(INVALID_ID, f"{field}: invalid {what} {value!r}", field=field)
        return value

    validate.__doc__ = f"Return ``value`` if it is a valid {what}.\n\nRaises:\n    InputError: invalid_id, naming ``field``."
    return validate


validate_election_id = _validator("election id", is_election_id)
validate_division_id = _validator("division id", is_division_id)
validate_party_id = _validator("party id", is_party_id)
validate_candidate_id = _validator("candidate id", is_candidate_id)
validate_incident_id = _validator("incident id", is_incident_id)
validate_article_id = _validator("article id", is_article_id)
validate_uuid = _validator("uuid", is_uuid)


def slugify(text: str) -> str:
    """A slug usable in ids and OCD type ids: lower case, ``[a-z0-9_.-]``, spaces to ``_``."""
    out = re.sub(r"[^a-z0-9_.-]+", "_", text.strip().lower()).strip("_")
    return out or "x"
