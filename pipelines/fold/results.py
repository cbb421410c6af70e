"""Result tables: station_turnout, station_results, municipality_results and seats.

Tallies are the volume (a million stations, ~12 candidates each), so nothing here loops over vote rows
in Python: the votes stay in numpy arrays from the extraction pass, are ordered with one integer argsort,
and become dictionary-encoded Arrow columns whose dictionaries are sorted (so the output does not depend
on the order events arrived in).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import vocabulary as v
from pipelines.fold import tables as t
from pipelines.fold.build import current_rows, dict_column, finish, gather, sorted_dictionary
from pipelines.fold.compose import Composition
from pipelines.fold.contest_results import contest_tables, station_composition
from pipelines.fold.extract import Extracted
from pipelines.fold.tallies import CurrentTallies, StationVotes, current_tallies, station_votes
from pipelines.fold.versions import Resolution


def station_turnout(cur: CurrentTallies) -> pa.Table:
    """One row per current tally: ballots and turnout (null unless registered and cast are known, and someone
    was registered)."""
    tab = cur.table
    registered = tab["registered_voters"]
    turnout = pc.divide(pc.cast(tab["ballots_cast"], pa.float64()),
                        pc.if_else(pc.equal(registered, 0), pa.scalar(None, pa.int64()), registered))
    cols = {c: tab[c] for c in tab.column_names}
    cols["turnout"] = turnout
    return finish(t.STATION_TURNOUT, cols, presorted=True)  # the current tallies are in its key order


def _party_of_selection(sv: StationVotes, candidates: pa.Table, selections: pa.Table) -> pa.Array:
    """Party of each selection: the candidate's registration, else the party the contest names for it, else
    the selection itself when it is a party (party-list contests)."""
    cand_dict = sv.selections
    registered = pa.nulls(len(cand_dict), pa.string())
    if candidates.num_rows:
        at = pc.index_in(cand_dict, value_set=candidates["candidate_id"])
        registered = candidates["party_id"].combine_chunks().take(at)
    declared = pa.nulls(len(cand_dict), pa.string())
    named = selections.filter(selections["party_id"].is_valid()) if selections.num_rows else selections
    if named.num_rows:
        # A selection named in several contests: the first by (selection_id, contest_id) decides.
        named = named.sort_by([("selection_id", "ascending"), ("contest_id", "ascending")])
        at = pc.index_in(cand_dict, value_set=named["selection_id"])
        declared = named["party_id"].combine_chunks().take(at)
    itself = pc.if_else(pc.starts_with(cand_dict, "party:"), cand_dict, pa.scalar(None, pa.string()))
    return pc.coalesce(registered, declared, itself)


def station_results(cur: CurrentTallies, sv: StationVotes, candidates: pa.Table, selections: pa.Table,
                    comp: Composition) -> pa.Table:
    """One row per tally × selection of the current tallies, dictionary-encoded, sorted by key; ``comp`` is the
    tallies' stations' composition (``contest_results.station_composition``)."""
    tab, rank = cur.table, sv.rank
    cols: dict[str, pa.Array] = {}
    for c in ("election_id", "station_id", "municipality_id", "event_id", "topic"):
        # The composition has the station ids sorted already (a million: no second sort).
        dictionary, idx = comp.start_dictionary() if c == "station_id" else sorted_dictionary(tab[c])
        cols[c] = dict_column(dictionary, gather(idx, rank))
    cols["contest_id"] = dict_column(sv.contests, sv.contest)
    cols["candidate_id"] = dict_column(sv.selections, sv.selection)
    cols["selection_kind"] = dict_column(sv.kinds, sv.kind)
    party_dict, party_idx = sorted_dictionary(_party_of_selection(sv, candidates, selections))
    cols["party_id"] = dict_column(party_dict, gather(party_idx, sv.selection))
    cols["votes"] = pa.array(sv.votes, type=pa.int64())
    cols["partition"] = pa.array(gather(tab["partition"].to_numpy(), rank), type=pa.int32())
    cols["offset"] = pa.array(gather(tab["offset"].to_numpy(), rank), type=pa.int64())
    # Rows are already in key order: build the table directly instead of re-sorting 12M rows.
    schema = t.SCHEMAS[t.STATION_RESULTS]
    return pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)


def seats(ex: Extracted, res: Resolution, candidates: pa.Table) -> pa.Table:
    """One row per member elected in the current SeatAllocation of each municipality."""
    rows = current_rows(ex, res, v.SEAT_ALLOCATION)
    rows = rows.filter(rows["candidate_id"].is_valid())
    idx = pc.index_in(rows["candidate_id"], value_set=candidates["candidate_id"])
    registered_party = candidates["party_id"].take(idx)
    # The allocation names the party; fall back to the candidate's registration when it does not.
    party = pc.coalesce(rows["party_id"], registered_party) if rows.num_rows else rows["party_id"]
    cols = {c: rows[c] for c in rows.column_names}
    cols["party_id"] = party
    return finish(t.SEATS, cols)


def municipality_results(station: pa.Table, seat_table: pa.Table, divisions: pa.Table,
                         ex: Extracted, res: Resolution) -> pa.Table:
    """Votes per municipality × candidate, ranked, with the elected-by-votes and elected flags.

    Only candidate selections at stations that name their municipality count: party lists, ballot measures and
    write-ins elect no council member, and a tally without a municipality (most sources outside the sample:
    contests are in contest_results) belongs to none.
    """
    # Long: one columnar pipeline (filter, group, rank, join seats) whose steps share the dictionary codes.
    if station.num_rows:
        counts = pc.and_(_equals(station["selection_kind"], "CANDIDATE"), pc.is_valid(station["municipality_id"]))
        if not pc.all(counts).as_py():
            station = station.filter(counts)
    if station.num_rows == 0:
        return t.empty_table(t.MUNICIPALITY_RESULTS)
    codes = {c: station[c].combine_chunks() if isinstance(station[c], pa.ChunkedArray) else station[c]
             for c in ("election_id", "municipality_id", "candidate_id", "party_id")}
    grouped = pa.table({
        "e": codes["election_id"].indices, "m": codes["municipality_id"].indices,
        "c": codes["candidate_id"].indices, "v": station["votes"],
    }).group_by(["e", "m", "c"]).aggregate([("v", "sum"), ("v", "count")])
    cand = codes["candidate_id"].dictionary.take(grouped["c"])
    cand_party = _party_by_candidate(codes["candidate_id"], codes["party_id"])
    table = pa.table({
        "election_id": codes["election_id"].dictionary.take(grouped["e"]),
        "municipality_id": codes["municipality_id"].dictionary.take(grouped["m"]),
        "candidate_id": cand,
        "party_id": cand_party.take(grouped["c"]),
        "votes": grouped["v_sum"],
        "stations": grouped["v_count"],
    })
    table = table.sort_by([("election_id", "ascending"), ("municipality_id", "ascending"),
                           ("votes", "descending"), ("candidate_id", "ascending")])
    e, m = table["election_id"], table["municipality_id"]
    starts = np.flatnonzero(np.append(True, pc.or_(pc.not_equal(e[1:], e[:-1]),
                                                   pc.not_equal(m[1:], m[:-1])).to_numpy(zero_copy_only=False)))
    pos = np.arange(table.num_rows)
    rank = pos - np.repeat(starts, np.diff(np.append(starts, table.num_rows))) + 1

    seat_rows = current_rows(ex, res, v.SEAT_ALLOCATION)
    allocated = pa.table({"election_id": seat_rows["election_id"], "municipality_id": seat_rows["municipality_id"],
                          "total_seats": seat_rows["total_seats"]}).group_by(
        ["election_id", "municipality_id"]).aggregate([("total_seats", "max")])
    # Only the divisions with results: a join hashes its right side, here a million divisions for a few thousand
    # municipalities.
    declared = divisions.select(["division_id", "seats"]).rename_columns(["municipality_id", "declared_seats"])
    declared = declared.filter(pc.is_in(declared["municipality_id"], value_set=pc.unique(table["municipality_id"])))
    keyed = table.append_column("rank", pa.array(rank, type=pa.int32())).append_column(
        "row", pa.array(pos, type=pa.int64()))
    keyed = keyed.join(allocated, keys=["election_id", "municipality_id"], join_type="left outer")
    keyed = keyed.join(declared, keys="municipality_id", join_type="left outer")
    elected_keys = seat_table.select(["election_id", "municipality_id", "candidate_id"]).append_column(
        "is_elected", pa.array([True] * seat_table.num_rows, type=pa.bool_()))
    keyed = keyed.join(elected_keys, keys=["election_id", "municipality_id", "candidate_id"], join_type="left outer")
    keyed = keyed.sort_by("row")
    seats_col = pc.coalesce(keyed["total_seats_max"], keyed["declared_seats"]).cast(pa.int32())
    # elected is only known where an allocation exists; elected_by_votes only where seats are known.
    has_allocation = keyed["total_seats_max"].is_valid()
    cols = {c: keyed[c] for c in ("election_id", "municipality_id", "candidate_id", "party_id", "votes",
                                  "stations", "rank")}
    cols["seats"] = seats_col
    cols["elected_by_votes"] = pc.less_equal(keyed["rank"], seats_col)
    cols["elected"] = pc.if_else(has_allocation, pc.coalesce(keyed["is_elected"], False),
                                 pa.scalar(None, pa.bool_()))
    return finish(t.MUNICIPALITY_RESULTS, cols)


def _equals(column: pa.ChunkedArray, value: str) -> pa.ChunkedArray:
    """Whether each entry of a dictionary column is ``value`` (False where null), compared on the dictionary:
    comparing the column itself decodes all its rows (12M station rows: 146 ms -> 26 ms)."""
    return pa.chunked_array([pc.equal(c.dictionary, value).fill_null(False).take(c.indices).fill_null(False)
                             for c in column.chunks], pa.bool_())


def _party_by_candidate(candidate: pa.DictionaryArray, party: pa.DictionaryArray) -> pa.Array:
    """Party of each candidate dictionary entry (null for independents and unregistered candidates)."""
    n = len(candidate.dictionary)
    first = np.full(n, -1, dtype=np.int64)
    cidx = candidate.indices.to_numpy(zero_copy_only=False)
    # Any row will do (a candidate's party is the same on every row): take the last one numpy writes.
    first[cidx] = np.arange(len(cidx))
    # Dictionary entries no row uses (selections filtered out as not candidates) get null.
    return party.take(pa.array(first, type=pa.int64(), mask=first < 0)).cast(pa.string())


def result_tables(ex: Extracted, res: Resolution, reference: dict[str, pa.Table], divisions: pa.Table
                  ) -> Iterator[tuple[str, pa.Table]]:
    """The result tables, each as soon as it is built: station_turnout, the contest tables (contests,
    contest_results, contest_summary), seats, municipality_results, then station_results.

    The contest tables come first: with station_turnout they are what the NIST documents read, whose build
    starts once they are staged (``pipelines.release.cdf_ahead``). station_results (a twelfth of a
    million-station fold's memory) is built after contest_results is handed over, and handed over as soon as
    municipality_results, the last table built from it, is done: a consumer that writes and drops each table
    (``pipelines.release.pipeline.stage``) never holds the two at once.

    ``divisions``: the divisions table, apart from ``reference`` so that it is let go of once the stations'
    composition is known (a million rows; municipality_results reads two of its columns).
    """
    cur = current_tallies(ex, res)
    ex.let_go()  # the tallies' pages: 0.4 GB of a million stations' mapped extraction
    candidates, selections = reference[t.CANDIDATES], reference[t.CONTEST_SELECTIONS]
    sv = station_votes(ex, cur, selections)
    ex.let_go()
    stations = station_composition(divisions, cur)
    divisions = divisions.select(["division_id", "seats"])
    turnout = station_turnout(cur)
    yield t.STATION_TURNOUT, turnout
    yield from contest_tables(ex, res, cur, sv, reference, turnout, stations).items()
    turnout = None  # the consumer's to hold (its name here kept 0.35 GB to the end at a million stations)
    seat_table = seats(ex, res, candidates)
    yield t.SEATS, seat_table
    station = station_results(cur, sv, candidates, selections, stations[0])
    # What station_results is built from, no table after it reads: the tallies, their votes and the stations'
    # composition were 0.9 GB beside it and municipality_results at a million stations.
    cur = sv = stations = None
    yield t.MUNICIPALITY_RESULTS, municipality_results(station, seat_table, divisions, ex, res)
    yield t.STATION_RESULTS, station
