"""Referential checks: an event may only point at elections, divisions, parties and candidates already declared.

Reference events are learned in order, so a reference file must declare parents before children, and
reference input must be read before the results, observations and news that point into it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pipelines.contract import reasons
from pipelines.ingest.records import Parsed, Rejected

# field -> which KnownIds set it must be in.
_REF_FIELDS: dict[str, str] = {
    "election_id": "elections",
    "division_id": "divisions",
    "station_id": "divisions",
    "municipality_id": "divisions",
    "parent_id": "divisions",
    "candidate_id": "candidates",
    "party_id": "parties",
}
# The id an event declares is not a reference: a DivisionDeclared's own division_id is new by definition.
_DECLARES: dict[str, tuple[str, str]] = {
    "ElectionDeclared": ("election_id", "elections"),
    "DivisionDeclared": ("division_id", "divisions"),
    "PartyDeclared": ("party_id", "parties"),
    "CandidateRegistered": ("candidate_id", "candidates"),
}
# Arrays of records whose elements carry references.
_NESTED: tuple[str, ...] = ("votes", "elected")
_KIND_INDEX = {"elections": 0, "divisions": 1, "parties": 2, "candidates": 3}
# The ids an event points at, per KnownIds set: (elections, divisions, parties, candidates).
References = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]


class KnownIds:
    """The ids declared so far by reference events."""

    def __init__(self) -> None:
        self.elections: set[str] = set()
        self.divisions: set[str] = set()
        self.parties: set[str] = set()
        self.candidates: set[str] = set()

    def add(self, parsed: Parsed) -> None:
        """Learn the id a reference event declares (other record types are ignored)."""
        declared = _DECLARES.get(parsed.record_type)
        if declared is not None:
            field, kind = declared
            getattr(self, kind).add(parsed.value[field])

    def declare(self, kind: str, entity_id: str) -> None:
        """Learn one declared id; ``kind`` is a set name (elections, divisions, parties, candidates)."""
        getattr(self, kind).add(entity_id)

    def covers(self, refs: References) -> bool:
        """Whether every id in ``refs`` (see :func:`references`) is declared; C-level set checks only."""
        elections, divisions, parties, candidates = refs
        return (self.elections.issuperset(elections) and self.divisions.issuperset(divisions)
                and self.parties.issuperset(parties) and self.candidates.issuperset(candidates))

    def __len__(self) -> int:
        return len(self.elections) + len(self.divisions) + len(self.parties) + len(self.candidates)


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
    candidates, parties = known.candidates, known.parties
    for array in _NESTED:
        for i, item in enumerate(value.get(array) or ()):
            # Hot for tallies: check the two nested reference fields directly.
            if item["candidate_id"] not in candidates:
                return f"{array}[{i}].candidate_id", item["candidate_id"]
            party = item.get("party_id")
            if party is not None and party not in parties:
                return f"{array}[{i}].party_id", party
    ids = value.get("division_ids")
    if ids:
        for i, ref in enumerate(ids):
            if ref not in known.divisions:
                return f"division_ids[{i}]", ref
    return None


def references(record_type: str, value: dict[str, Any]) -> References:
    """Every id the event points at, grouped by set; an event passes :func:`check_references` exactly when
    :meth:`KnownIds.covers` holds for these (computed in worker processes, checked in order by the main one)."""
    own = _DECLARES.get(record_type, (None, None))[0]
    out: tuple[list[str], ...] = ([], [], [], [])
    for field, kind in _REF_FIELDS.items():
        ref = value.get(field)
        if ref is not None and field != own:
            out[_KIND_INDEX[kind]].append(ref)
    for array in _NESTED:
        for item in value.get(array) or ():
            out[3].append(item["candidate_id"])
            party = item.get("party_id")
            if party is not None:
                out[2].append(party)
    out[1].extend(value.get("division_ids") or ())
    return tuple(out[0]), tuple(out[1]), tuple(out[2]), tuple(out[3])


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
