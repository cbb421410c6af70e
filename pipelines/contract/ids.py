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
# A contest id is its election's id with slug segments before the date (docs/contests.md, "Identifiers"): the
# same shape; that it shares its election's type prefix and date is checked against the election (ingest).
CONTEST_ID_RE = re.compile(ELECTION_ID_RE.pattern)
DIVISION_ID_RE = re.compile(r"ocd-division/country:[a-z]{2}(?:/[a-z_]+:[a-z0-9_.~-]+)*")
# The division of a whole country (where national figures are reported): a division id with no sub-division.
COUNTRY_DIVISION_RE = re.compile(r"ocd-division/country:[a-z]{2}")
SLUG = r"[a-z0-9][a-z0-9_.-]*"
PARTY_PREFIX = "party:"
CANDIDATE_PREFIX = "candidate:"
INCIDENT_PREFIX = "incident:"
ARTICLE_PREFIX = "article:"
OPTION_PREFIX = "option:"
WRITE_IN_PREFIX = "write-in:"
PARTY_ID_RE = re.compile(rf"{PARTY_PREFIX}{SLUG}")
CANDIDATE_ID_RE = re.compile(rf"{CANDIDATE_PREFIX}{SLUG}")
INCIDENT_ID_RE = re.compile(rf"{INCIDENT_PREFIX}{SLUG}")
ARTICLE_ID_RE = re.compile(rf"{ARTICLE_PREFIX}{SLUG}")
OPTION_ID_RE = re.compile(rf"{OPTION_PREFIX}{SLUG}")
WRITE_IN_ID_RE = re.compile(rf"{WRITE_IN_PREFIX}{SLUG}")
# What a ballot selection (ContestSelection.selection_id, a tally's votes[].candidate_id) may be.
SELECTION_ID_RE = re.compile(
    rf"(?:{CANDIDATE_PREFIX}|{PARTY_PREFIX}|{OPTION_PREFIX}|{WRITE_IN_PREFIX}){SLUG}")
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
is_contest_id: IdCheck = _predicate(CONTEST_ID_RE)
is_division_id: IdCheck = _predicate(DIVISION_ID_RE)
is_party_id: IdCheck = _predicate(PARTY_ID_RE)
is_candidate_id: IdCheck = _predicate(CANDIDATE_ID_RE)
is_incident_id: IdCheck = _predicate(INCIDENT_ID_RE)
is_article_id: IdCheck = _predicate(ARTICLE_ID_RE)
is_option_id: IdCheck = _predicate(OPTION_ID_RE)
is_write_in_id: IdCheck = _predicate(WRITE_IN_ID_RE)
is_selection_id: IdCheck = _predicate(SELECTION_ID_RE)
is_uuid: IdCheck = _predicate(UUID_RE)

# What each id-bearing field (or array of ids) must look like. Used by the ingest converter, so a field
# named here is checked wherever it appears in any record type.
ID_KINDS: dict[str, tuple[str, IdCheck]] = {
    "election_id": ("election id", is_election_id),
    "contest_id": ("contest id", is_contest_id),
    "district_id": ("division id", is_division_id),
    "member_of": ("division id", is_division_id),
    "selection_id": ("selection id", is_selection_id),
    "running_mates": ("candidate id", is_candidate_id),
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

# Where a field's format depends on the record holding it: (short record name, field) -> kind, checked before
# ID_KINDS. A tally's votes[].candidate_id names any selection (docs/contests.md), not only a candidate.
ID_KINDS_IN: dict[tuple[str, str], tuple[str, IdCheck]] = {
    ("ContestantVotes", "candidate_id"): ("selection id", is_selection_id),
}


def _validator(what: str, check: IdCheck) -> Callable[[str, str], str]:
    def validate(value: str, field: str) -> str:
        if not isinstance(value, str) or not check(value):
            raise InputError(INVALID_ID, f"{field}: invalid {what} {value!r}", field=field)
        return value

    validate.__doc__ = f"Return ``value`` if it is a valid {what}.\n\nRaises:\n    InputError: invalid_id, naming ``field``."
    return validate


validate_election_id = _validator("election id", is_election_id)
validate_contest_id = _validator("contest id", is_contest_id)
validate_selection_id = _validator("selection id", is_selection_id)
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


def _prefix_and_date(election_or_contest_id: str) -> tuple[str, str]:
    head, _, date = election_or_contest_id.rpartition(".")
    return head.split(".", 1)[0], date


def contest_matches_election(contest_id: str, election_id: str) -> bool:
    """Whether a contest id has its election's type prefix and date (``local.az.x.2025-01-29`` belongs to
    ``local.az.2025-01-29``; docs/contests.md, "Identifiers"). Both ids must already be well formed."""
    return _prefix_and_date(contest_id) == _prefix_and_date(election_id)


def contest_id(election_id: str, *slugs: str) -> str:
    """The id of a contest of ``election_id``: its slug segments inserted before the date
    (``contest_id("local.az.2025-01-29", "absheron")`` is ``local.az.absheron.2025-01-29``).

    Each slug is lower-cased to ``[a-z0-9-]`` (other characters become ``-``).

    Raises:
        InputError: invalid_id, when the result is not a valid contest id (e.g. an empty slug).
    """
    head, _, date = election_id.rpartition(".")
    parts = [re.sub(r"[^a-z0-9-]+", "-", s.strip().lower()).strip("-") for s in slugs]
    return validate_contest_id(".".join([head, *parts, date]), "contest_id")
