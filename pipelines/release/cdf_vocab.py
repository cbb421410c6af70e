"""How Ballotstream's vocabularies map onto NIST SP 1500-100 v2 enumerations (docs/contests.md, "Export").

Every target value is a symbol of the published JSON schema (``tests/data/nist/``); a Ballotstream value without
a NIST counterpart becomes NIST's ``other`` with the Ballotstream word as ``OtherType``, never a guessed symbol.
"""

from __future__ import annotations

# ElectionKind -> ElectionResults.ElectionType; the rest are "other" (what is elected is not a NIST type).
ELECTION_TYPES = {"GENERAL": "general", "PRIMARY": "primary", "RUNOFF": "runoff", "SPECIAL": "special"}

# DivisionKind -> ElectionResults.ReportingUnitType where the kind alone says it.
UNIT_TYPES = {
    "COUNTRY": "country", "MUNICIPALITY": "municipality", "POLLING_STATION": "polling-place", "COUNTY": "county",
    "WARD": "ward", "PRECINCT": "precinct",
}
# REGION, CONSTITUENCY, DISTRICT and OTHER say too little: the division's label (the source's own word, e.g.
# "congressional district") picks the NIST type when it names one.
LABEL_TYPES = {
    "state": "state", "congressional district": "congressional", "congressional": "congressional",
    "state house district": "state-house", "state house": "state-house", "state senate district": "state-senate",
    "state senate": "state-senate", "city council district": "city-council", "county council district":
    "county-council", "school district": "school", "judicial district": "judicial", "ward": "ward",
    "borough": "borough", "city": "city", "town": "town", "township": "township", "village": "village",
}
OTHER = "other"

# contest_results method columns -> ElectionResults.CountItemType (MAIL is mailed absentee ballots).
METHOD_TYPES = {
    "votes_election_day": "election-day", "votes_early": "early", "votes_mail": "absentee-mail",
    "votes_absentee": "absentee", "votes_provisional": "provisional", "votes_other": OTHER,
}
TOTAL = "total"
# Order of VoteCounts within one GpUnit: the total first, then the methods as above.
COUNT_TYPE_ORDER = {TOTAL: 0, **{t: i + 1 for i, t in enumerate(METHOD_TYPES.values())}}
OTHER_METHOD = "other-vote-method"

# ContestKind -> the NIST contest class.
CANDIDATE_CONTEST = "ElectionResults.CandidateContest"
PARTY_CONTEST = "ElectionResults.PartyContest"
MEASURE_CONTEST = "ElectionResults.BallotMeasureContest"
RETENTION_CONTEST = "ElectionResults.RetentionContest"
CONTEST_TYPES = {"CANDIDATE": CANDIDATE_CONTEST, "PARTY_LIST": PARTY_CONTEST, "BALLOT_MEASURE": MEASURE_CONTEST,
                 "RETENTION": RETENTION_CONTEST}

# Unknown values of CandidateRegistered's person fields: never exported as a value.
UNKNOWN = "UNKNOWN"


def unit_type(kind: str | None, label: str | None) -> tuple[str, str | None]:
    """(ReportingUnitType, OtherType or None) of a division."""
    if kind in UNIT_TYPES:
        return UNIT_TYPES[kind], None
    word = " ".join((label or "").lower().replace("-", " ").replace("_", " ").split())
    if word in LABEL_TYPES:
        return LABEL_TYPES[word], None
    return OTHER, word or (kind or OTHER).lower().replace("_", " ")


def election_type(kind: str | None) -> tuple[str, str | None]:
    """(ElectionType, OtherType or None) of an election."""
    if kind in ELECTION_TYPES:
        return ELECTION_TYPES[kind], None
    return OTHER, (kind or OTHER).lower()
