"""Referential checks: an event may only point at elections, divisions, parties, candidates and contests already
declared.

Reference events are learned in order, so a reference file must declare parents before children, and
reference input must be read before the results, observations and news that point into it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pipelines.contract import reasons
from pipelines.contract.ids import CANDIDATE_PREFIX, PARTY_PREFIX
from pipelines.ingest.records import Parsed, Rejected

# field -> which KnownIds set it must be in.
_REF_FIELDS: dict[str, str] = {
    "election_id": "elections",
    "division_id": "divisions",
    "station_id": "divisions",
    "municipality_id": "divisions",
    "parent_id": "divisions",
    "district_id": "divisions",
    "candidate_id": "candidates",
    "party_id": "parties",
}
# The id an event declares is not a reference: a DivisionDeclared's own division_id is new by definition.
_DECLARES: dict[str, tuple[str, str]] = {
    "ElectionDeclared": ("election_id", "elections"),
    "DivisionDeclared": ("division_id", "divisions"),
    "PartyDeclared": ("party_id", "parties"),
    "CandidateRegistered": ("candidate_id", "candidates"),
    "ContestDeclared": ("contest_id", "contests"),
}
# Arrays of records whose elements carry references .
_NESTED: tuple[str, ...] = ("votes", "elected", "selections")
# Fields of those elements naming a selection: a candidate, party, option or write-in id.
_SELECTION_FIELDS: tuple[str, ...] = ("candidate_id", "selection_id")
# Arrays of division ids.
_DIVISION_ARRAYS: tuple[str, ...] = ("division_ids", "member_of")
_KIND_INDEX = {"elections": 0, "divisions": 1, "parties": 2, "candidates": 3, "contests": 4}
# The ids an event points at, per KnownIds set: (elections, divisions, parties, candidates, contests).
References = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def _contest_ref(value: dict[str, Any], own: str | None) -> str | None:
    """The contest an event points at: its contest_id unless it is the election's default contest (the
    election id itself, never declared as a contest; docs/contests.md rule 2) or the event declares it.

    A candidate's contest_id is not checked here: a contest lists its candidates as selections, so the candidates
    are declared first and their contest after them, whose declaration is checked against them.
    """
    contest = value.get("contest_id")
    if contest is None or own in ("contest_id", "candidate_id") or contest == value.get("election_id"):
        return None
    return str(contest)


def _selection_set(selection_id: str) -> str | None:
    """Which KnownIds set a selection id (votes[].candidate_id) must be in: candidates and parties are declared
    entities; option and write-in ids are not (a contest's declaration lists them)."""
    if selection_id.startswith(CANDIDATE_PREFIX):
        return "candidates"
    if selection_id.startswith(PARTY_PREFIX):
        return "parties"
    return None


class KnownIds:
    """The ids declared so far by reference events."""

    def __init__(self) -> None:
        self.elections: set[str] = set()
        self.divisions: set[str] = set()
        self.parties: set[str] = set()
        self.candidates: set[str] = set()
        self.contests: set[str] = set()

    def add(self, parsed: Parsed) -> None:
        """Learn the id a reference event declares (other record types are ignored)."""
        declared = _DECLARES.get(parsed.record_type)
        if declared is not None:
            field, kind = declared
            getattr(self, kind).add(parsed.value[field])

    def declare(self, kind: str, entity_id: str) -> None:
        """Learn one declared id; ``kind`` is a set name (elections, divisions, parties, candidates, contests)."""
        getattr(self, kind).add(entity_id)

    def covers(self, refs: References) -> bool:
        """Whether every id in ``refs`` (see :func:`references`) is declared; C-level set checks only."""
        elections, divisions, parties, candidates, contests = refs
        return (self.elections.issuperset(elections) and self.divisions.issuperset(divisions)
                and self.parties.issuperset(parties) and self.candidates.issuperset(candidates)
                and self.contests.issuperset(contests))

    def __len__(self) -> int:
        return (len(self.elections) + len(self.divisions) + len(self.parties) + len(self.candidates)
                + len(self.contests))


def _unknown_flat(value: dict[str, Any], known: KnownIds, own: str | None) -> tuple[str, str] | None:
    for field, kind in _REF_FIELDS.items():
        ref = value.get(field)
        if ref is not None and field != own and ref not in getattr(known, kind):
            return field, ref
    return None


def _unknown(value: dict[str, Any], known: KnownIds, own: str | None) -> tuple[str, str] | None:
    found = _unknown_flat(value, known, own)
    if found is not None:
        return found
    contest = _contest_ref(value, own)
    if contest is not None and contest not in known.contests:
        return "contest_id", contest
    candidates, parties = known.candidates, known.parties
    for array in _NESTED:
        for i, item in enumerate(value.get(array) or ()):
            # Hot for tallies: check the nested reference fields directly.
            for field in _SELECTION_FIELDS:
                selection = item.get(field)
                if selection is not None and selection not in candidates:
                    kind = _selection_set(selection)
                    if kind is not None and selection not in getattr(known, kind):
                        return f"{array}[{i}].{field}", selection
            party = item.get("party_id")
            if party is not None and party not in parties:
                return f"{array}[{i}].party_id", party
            for j, mate in enumerate(item.get("running_mates") or ()):
                if mate not in candidates:
                    return f"{array}[{i}].running_mates[{j}]", mate
    for array in _DIVISION_ARRAYS:
        for i, ref in enumerate(value.get(array) or ()):
            if ref not in known.divisions:
                return f"{array}[{i}]", ref
    return None


def references(record_type: str, value: dict[str, Any]) -> References:
    """Every id the event points at, grouped by set; an event passes :func:`check_references` exactly when
    :meth:`KnownIds.covers` holds for these (computed in worker processes, checked in order by the main one)."""
    own = _DECLARES.get(record_type, (None, None))[0]
    out: tuple[list[str], ...] = ([], [], [], [], [])
    for field, kind in _REF_FIELDS.items():
        ref = value.get(field)
        if ref is not None and field != own:
            out[_KIND_INDEX[kind]].append(ref)
    contest = _contest_ref(value, own)
    if contest is not None:
        out[4].append(contest)
    for array in _NESTED:
        for item in value.get(array) or ():
            for field in _SELECTION_FIELDS:
                selection = item.get(field)
                kind = None if selection is None else _selection_set(selection)
                if kind is not None:
                    out[_KIND_INDEX[kind]].append(selection)
            party = item.get("party_id")
            if party is not None:
                out[2].append(party)
            out[3].extend(item.get("running_mates") or ())
    for array in _DIVISION_ARRAYS:
        out[1].extend(value.get(array) or ())
    return tuple(out[0]), tuple(out[1]), tuple(out[2]), tuple(out[3]), tuple(out[4])


def declared(record_type: str, value: dict[str, Any]) -> tuple[str, str] | None:
    """(KnownIds set name, id) that a reference event declares, or None."""
    found = _DECLARES.get(record_type)
    return None if found is None else (found[1], value[found[0]])


def check_references(parsed: Parsed, known: KnownIds, kind: str | None = None) -> Rejected | None:
    """A :class:`Rejected` (``unknown_reference``) if the event points at an undeclared id, else None.

    Args:
        parsed: a valid event.
        known: ids declared so far.
        kind: the input kind, copied to the Rejected.
    """
    own = _DECLARES.get(parsed.record_type, (None, None))[0]
    found = _unknown(parsed.value, known, own)
    if found is None:
        return None
    field, ref = found
    return Rejected(parsed.file, parsed.line, parsed.raw, reasons.UNKNOWN_REFERENCE,
                    f"{field}: unknown reference {ref!r}", field, kind)


def with_references(
    items: Iterable[Parsed | Rejected], known: KnownIds, kind: str | None = None
) -> Iterator[Parsed | Rejected]:
    """Pass results through, rejecting events with unknown references and learning declared ids on the way."""
    for item in items:
        if isinstance(item, Parsed):
            rejected = check_references(item, known, kind)
            if rejected is not None:
                yield rejected
                continue
            known.add(item)
        yield item
