"""The fold's vectorised building blocks against plain Python or Arrow: dense ranks of strings, repeated values,
the sorted dictionary encoding, the division closure (``compose``), and contest_results' roll-up sums,
including sums beyond float64's exact range."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.fold import build, fold, ranks, repeats, summary, tallies
from pipelines.fold import contest_results as cr
from pipelines.fold import contest_summary as cs
from pipelines.fold import tables as t
from pipelines.fold.build import log_order, sorted_dictionary
from pipelines.fold.compose import compose
from tests.support.factories import COUNTRY, ELECTION, Log, muni

_DIVISIONS = pa.schema([("division_id", pa.string()), ("parent_id", pa.string()), ("municipality_id", pa.string()),
                        ("member_of", pa.list_(pa.string()))])


def _strings(rnd: random.Random) -> pa.ChunkedArray:
    """Random strings that tie on their first 8 bytes or not: shared prefixes, values shorter than 8 bytes, NUL
    and non-ASCII bytes, empty strings and nulls, in chunks that may be slices."""
    alphabet = ["a", "b", "\x00", "é", "\U0001f600", "z"]
    prefix = rnd.choice(["", "ocd-division/", "abcdefg"])
    pool = [prefix * rnd.randint(0, 1) + "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12)))
            for _ in range(rnd.randint(1, 40))]
    chunks = []
    for _ in range(rnd.randint(1, 3)):
        values = [None if rnd.random() < 0.1 else rnd.choice(pool) for _ in range(rnd.randint(0, 60))]
        chunk = pa.array(["pad", *values, "pad"], pa.string())
        chunks.append(chunk.slice(1, len(values)) if rnd.random() < 0.5 else pa.array(values, pa.string()))
    return pa.chunked_array(chunks, pa.string())


def _arrow_rank(values: pa.ChunkedArray) -> list[int]:
    return (pc.rank(values, tiebreaker="dense").to_numpy(zero_copy_only=False) - 1).tolist()


@pytest.mark.parametrize("seed", range(60))
def test_dense_rank_routes_give_arrows_ranks(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each route (hash the distinct values; sort 8-byte prefixes, ties as strings) against Arrow's sort."""
    values = _strings(random.Random(seed))
    expected = _arrow_rank(values)
    assert ranks._by_distinct(values).tolist() == expected
    assert ranks._by_prefix(values.combine_chunks()).tolist() == expected
    monkeypatch.setattr(ranks, "MIN_ROWS", 0)  # let the sample choose a route even for a few rows
    got = ranks.dense_rank(values)
    assert got.dtype == np.int64 and got.tolist() == expected


@pytest.mark.parametrize("seed", range(60))
def test_repeated_values_are_the_values_found_in_another_row(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fingerprints sorted as integers, then the candidates compared as strings, against counting in Python."""
    rnd = random.Random(seed)
    values = _strings(rnd)
    flat = values.to_pylist()
    rows = None if seed % 2 else np.array(sorted(rnd.sample(range(len(flat)), rnd.randint(0, len(flat)))), np.int64)
    chosen = flat if rows is None else [flat[i] for i in rows]
    expected = [chosen.count(x) > 1 for x in chosen]
    monkeypatch.setattr(repeats, "MIN_ROWS", 0)
    got = repeats.repeated_values(values, rows)
    assert got.dtype == np.bool_ and got.tolist() == expected
    # Fingerprints that collide a lot (the length alone): the string comparison still decides.
    by_length = lambda c: pc.binary_length(c).fill_null(-1).to_numpy().astype(np.uint64)  # noqa: E731
    monkeypatch.setattr(repeats, "fingerprints", by_length)
    assert repeats.repeated_values(values, rows).tolist() == expected


def test_fingerprints_are_equal_for_equal_strings_whatever_their_buffers() -> None:
    values = ["", "a", "abcdefgh", "abcdefghi", "x" * 40, "x" * 41, None]
    plain = repeats.fingerprints(pa.array(values, pa.string()))
    sliced = repeats.fingerprints(pa.array(["zzzzzzzzzz", *values], pa.string()).slice(1))
    assert plain.tolist() == sliced.tolist()
    assert len(set(plain.tolist())) == len(values)


@pytest.mark.parametrize("seed", range(40))
def test_sorted_union_is_the_sorted_dictionary_of_both(seed: int) -> None:
    """Values of ``few`` before, between, after and among the ordered ones, prefixes of them, none at all."""
    rnd = random.Random(seed)
    pool = ["", "a", "ab", "abc", "b", "ba", "é", "z", "zz", "\x00"]
    ordered = pa.array(sorted(set(rnd.sample(pool, rnd.randint(0, 6))), key=str.encode), pa.string())
    few = pa.array(sorted(set(rnd.sample(pool, rnd.randint(0, 6))), key=str.encode), pa.string())
    union, of_ordered, of_few = ranks.sorted_union(ordered, few)
    expected, codes = sorted_dictionary(pa.chunked_array([ordered, few], pa.string()))
    assert union.to_pylist() == expected.to_pylist()
    assert of_ordered.tolist() + of_few.tolist() == codes.tolist()
    assert ranks.searchsorted(ordered, few).tolist() == [sum(o.encode() < f.encode() for o in ordered.to_pylist())
                                                         for f in few.to_pylist()]


def test_prefix_keys_order_values_by_their_first_bytes() -> None:
    values = pa.array(["", "a", "a\x00", "ab", "abcdefgh", "abcdefghij", "\xff", None], pa.string())
    keys = ranks.prefix_keys(values)[:-1].tolist()
    as_bytes = [(s.encode() + bytes(8))[:8] for s in values.to_pylist()[:-1]]
    assert keys == [int.from_bytes(b, "big") for b in as_bytes]


@pytest.mark.parametrize("seed", range(40))
def test_sorted_dictionary_is_sorted_distinct_values_and_their_indices(seed: int) -> None:
    rnd = random.Random(seed)
    chunks = [pa.array([None if rnd.random() < 0.2 else rnd.choice(["b", "a", "", "ab", "é", "zz"])
                        for _ in range(rnd.randint(0, 9))], pa.string()) for _ in range(rnd.randint(0, 3))]
    values = pa.chunked_array(chunks, pa.string())
    flat = [x for c in chunks for x in c.to_pylist()]
    uniq, idx = sorted_dictionary(values)
    expected = sorted({x for x in flat if x is not None}, key=lambda s: s.encode())
    assert uniq.to_pylist() == expected
    assert idx.dtype == np.int32
    assert idx.tolist() == [-1 if x is None else expected.index(x) for x in flat]


@pytest.mark.parametrize("seed", range(40))
def test_take_chunked_is_arrows_take(seed: int) -> None:
    """A chunk at a time (repeated rows, empty chunks, sliced chunks, no rows; rows in any order): Arrow's take,
    as one array."""
    rnd = random.Random(seed)
    values = _strings(rnd)
    if rnd.random() < 0.3:
        values = pa.chunked_array([*values.chunks, pa.array([], pa.string())], pa.string())
    n = len(values)
    rows = sorted(rnd.choices(range(n), k=rnd.randint(0, 2 * n))) if n else []
    if rows and rnd.random() < 0.3:
        rnd.shuffle(rows)
    taken = build.take_chunked(values, np.array(rows, np.int64))
    assert isinstance(taken, pa.Array) and taken.type == values.type
    assert taken.to_pylist() == values.take(pa.array(rows, pa.int64())).to_pylist()
    assert build.take_chunked(values.combine_chunks(), np.array(rows, np.int64)).to_pylist() == \
        taken.to_pylist()


@pytest.mark.parametrize("seed", range(30))
def test_log_order_is_the_sort_by_the_history_tables_order(seed: int) -> None:
    rnd = random.Random(seed)
    n = rnd.randint(0, 60)
    wide = seed % 3 == 0  # offsets too wide to pack with the topic and partition: the lexicographic path
    top = 2**61 if wide else 6
    ids = [f"e{rnd.randint(0, 10**6):07d}-{i}" for i in range(n)]  # distinct, in no particular order
    columns = {"event_id": pa.array(ids), "topic": pa.array([rnd.choice(["b.results", "a.ref", "c"]) for _ in ids]),
               "partition": pa.array([rnd.randint(0, 5) for _ in ids], pa.int32()),
               "offset": pa.array([rnd.randint(0, top) for _ in ids], pa.int64())}  # ties at one position too
    expected = sorted(range(n), key=lambda i: tuple(columns[k][i].as_py() for k in t.ORDER[t.EVENTS]))
    assert log_order(columns).tolist() == expected


@pytest.mark.parametrize("seed", range(60))
def test_in_tally_order_is_a_stable_sort_by_tally_and_candidate(seed: int) -> None:
    """Runs of one tally each (in candidate order or not, a candidate twice, a tally in two runs), in any order."""
    rnd = random.Random(seed)
    n_tallies, width = rnd.randint(1, 8), rnd.randint(1, 6)
    runs = []
    for tally in rnd.sample(range(n_tallies), rnd.randint(1, n_tallies)):
        cands = [rnd.randrange(width) for _ in range(rnd.randint(1, 5))]
        runs.append([(tally, c) for c in (sorted(cands) if seed % 4 else cands)])
    if seed % 5 == 0 and len(runs[0]) > 1:  # one tally's votes in two runs
        runs.append(runs[0][1:])
        runs[0] = runs[0][:1]
    rnd.shuffle(runs)
    rows = [r for run in runs for r in run]
    rank = np.array([r[0] for r in rows], np.int32)
    cand = np.array([r[1] for r in rows], np.int32)
    votes = np.arange(len(rows), dtype=np.int64)  # each row's original position
    got = tallies.in_tally_order(rank, cand, votes, n_tallies, width)
    expected = sorted(range(len(rows)), key=lambda i: rows[i])  # Python's sort is stable
    assert got[2].tolist() == expected
    assert got[0].tolist() == [rows[i][0] for i in expected] and got[1].tolist() == [rows[i][1] for i in expected]
    assert got[0].dtype == np.int32 and got[1].dtype == np.int32


def _candidate_counts(rows: list[dict[str, Any]], years: dict[str, int]) -> dict[str, dict[str, int]]:
    """national_summary's candidate counts, one candidate at a time."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        c, known = counts[r["election_id"]], lambda k: r[k] not in (None, "UNKNOWN")  # noqa: B023
        c["all"] += 1
        c["party"] += r["party_id"] is not None
        c["gender_known"] += known("gender")
        c["women"] += known("gender") and r["gender"] == "FEMALE"
        c["education_known"] += known("education")
        c["higher"] += known("education") and r["education"] == "HIGHER"
        year = years.get(r["election_id"])
        by_birth = not known("age_band") and r["birth_year"] is not None and year is not None
        c["age_known"] += known("age_band") or by_birth
        c["aged"] += (known("age_band") and r["age_band"] == "AGE_21_35") or (
            by_birth and 21 <= year - r["birth_year"] <= 35)
    return counts


@pytest.mark.parametrize("seed", range(30))
def test_candidate_figures_count_what_is_known(seed: int) -> None:
    rnd = random.Random(seed)
    pick = lambda *values: rnd.choice([None, "UNKNOWN", *values])  # noqa: E731
    rows = [{"election_id": rnd.choice(["e1", "e2", "e3", None]), "party_id": rnd.choice([None, "party:a"]),
             "gender": pick("FEMALE", "MALE"), "education": pick("HIGHER", "BASIC"),
             "age_band": pick("AGE_21_35", "AGE_36_50"), "birth_year": rnd.choice([None, 1990, 2000, 2010, 1960])}
            for _ in range(rnd.randint(0, 40))]
    years = {"e1": 2025, "e2": 2040}  # e3 has no date: its candidates' ages are known from their band alone
    columns = ["election_id", "party_id", "gender", "education", "age_band", "birth_year"]
    table = pa.Table.from_pylist(rows, schema=pa.schema([(k, pa.string()) for k in columns[:-1]]
                                                        + [("birth_year", pa.int32())]))
    got = summary._candidate_figures(table, years)
    for e, c in _candidate_counts(rows, years).items():
        share = lambda part, whole: part / whole if whole else None  # noqa: E731
        assert got[e] == {
            "CANDIDATES_PARTY": (c["party"], c["all"]), "CANDIDATES_INDEPENDENT": (c["all"] - c["party"], c["all"]),
            "CANDIDATES_WOMEN_SHARE": (share(c["women"], c["gender_known"]), c["gender_known"]),
            "CANDIDATES_HIGHER_EDUCATION_SHARE": (share(c["higher"], c["education_known"]), c["education_known"]),
            "CANDIDATES_AGED_21_35_SHARE": (share(c["aged"], c["age_known"]), c["age_known"])}
    assert set(got) == {r["election_id"] for r in rows}


@pytest.mark.parametrize("seed", range(30))
def test_ranked_selections_are_most_voted_first_ties_by_id(seed: int) -> None:
    rnd = random.Random(seed)
    rows = sorted({(rnd.choice(["c2", "c1", "c10"]), rnd.choice(["s1", "s2", "s10", "é"])): rnd.choice([0, 5, 7, -1])
                   for _ in range(rnd.randint(0, 20))}.items(), key=lambda r: (r[0][0].encode(), r[0][1].encode()))
    top = pa.table({"contest_id": pa.array([c for (c, _), _ in rows], pa.string()),
                    "selection_id": pa.array([s for (_, s), _ in rows], pa.string()),
                    "votes": pa.array([n for _, n in rows], pa.int64())})
    expected: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for (c, s), n in rows:
        expected[c].append((n, s))
    got = cs._ranked(top)
    assert set(got) == set(expected)
    for c, pairs in expected.items():
        ordered = sorted(pairs, key=lambda p: (-p[0], p[1]))
        assert got[c] == ([n for n, _ in ordered], [s for _, s in ordered])


def _reach(rows: list[dict[str, Any]], start: str) -> set[str]:
    """Every division ``start`` reaches through parent_id, municipality_id and member_of, itself excluded."""
    links = defaultdict(set)
    for r in rows:
        for up in [r["parent_id"], r["municipality_id"], *(r["member_of"] or ())]:
            if up is not None:
                links[r["division_id"]].add(up)
    seen, todo = set(), [start]
    while todo:
        for up in links[todo.pop()]:
            if up not in seen:
                seen.add(up)
                todo.append(up)
    return seen - {start}


@pytest.mark.parametrize("seed", range(60))
def test_compose_is_the_transitive_closure(seed: int) -> None:
    """Random graphs: cycles, self-links, unknown ids, nulls, several links per division, divisions that are
    both linked to and starts."""
    rnd = random.Random(seed)
    names = [f"d{i}" for i in range(rnd.randint(0, 14))]
    pick = lambda: rnd.choice([*names, "unknown"]) if names and rnd.random() < 0.6 else None  # noqa: E731
    rows = [{"division_id": d, "parent_id": pick(), "municipality_id": pick() if rnd.random() < 0.4 else None,
             "member_of": None if rnd.random() < 0.3 else [pick() for _ in range(rnd.randint(0, 3))]}
            for d in names]
    divisions = pa.Table.from_pylist(rows, schema=_DIVISIONS)
    given = [rnd.choice([*names, None, "s"]) if names else "s" for _ in range(rnd.randint(0, 12))]
    starts = pa.chunked_array([pa.array(given[:3], pa.string()), pa.array(given[3:], pa.string())])
    marked = np.array([rnd.random() < 0.3 for _ in names], dtype=bool)  # divisions that are starts as well
    comp = compose(divisions, starts, division_starts=marked)
    ids = comp.ids.to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    pairs = list(zip(comp.start.tolist(), comp.division.tolist(), strict=True))
    assert pairs == sorted(set(pairs))
    got = defaultdict(set)
    for s, d in pairs:
        got[ids[s]].add(ids[d])
    every = {s for s in given if s is not None} | {d for d, m in zip(names, marked, strict=True) if m}
    assert {s: got[s] for s in every} == {s: _reach(rows, s) for s in every}
    assert set(got) <= every
    assert [ids[c] if c >= 0 else None for c in comp.starts.tolist()] == given
    assert [ids[c] for c in comp.division_codes.tolist()] == names
    distinct, index = comp.start_dictionary()
    expected, expected_index = sorted_dictionary(starts)
    assert distinct.equals(expected) and index.dtype == np.int32 and index.tolist() == expected_index.tolist()


@pytest.mark.parametrize("seed", range(30))
def test_code_of_is_each_values_position_in_the_ids(seed: int) -> None:
    """Few values (looked up by hashing the values) and many (by hashing the ids), unknown ids and nulls."""
    rnd = random.Random(seed)
    names = sorted({f"d{rnd.randint(0, 999)}" for _ in range(rnd.randint(1, 300))})
    divisions = pa.Table.from_pylist([{"division_id": d} for d in names], schema=_DIVISIONS)
    comp = compose(divisions, pa.array([], pa.string()))
    ids = comp.ids.to_pylist()
    values = [rnd.choice([*names[:5], "unknown", None]) if rnd.random() < 0.5 else rnd.choice(names)
              for _ in range(rnd.choice([1, 3, len(names) // 4 + 1, len(names)]))]
    got = comp.code_of(pa.chunked_array([pa.array(values[:2], pa.string()), pa.array(values[2:], pa.string())]))
    assert got.dtype == np.int64
    assert got.tolist() == [ids.index(x) if x in ids else -1 for x in values]


def _random_election(seed: int, big: bool = False) -> Log:
    """Stations in districts and regions (with member_of), several contests with vote methods here and there."""
    rnd = random.Random(seed)
    log = Log()
    log.election()
    log.division(COUNTRY, "COUNTRY", None)
    regions = [f"{COUNTRY}/region:r{i}" for i in range(2)]
    districts = [f"{COUNTRY}/district:d{i}" for i in range(3)]
    for r in regions:
        log.division(r, "REGION", COUNTRY)
    for d in districts:
        log.division(d, "DISTRICT", rnd.choice(regions), member_of=rnd.sample(regions, rnd.randint(0, 1)))
    stations = [f"{COUNTRY}/district:d0/precinct:p{i}" for i in range(8)]
    for s in stations:
        log.division(s, "PRECINCT", rnd.choice(districts), member_of=rnd.sample(districts, rnd.randint(0, 2)))
    contests = {f"local.az.c{i}.2025-01-29": [f"candidate:c{i}-{j}" for j in range(rnd.randint(1, 4))]
                for i in range(3)}
    for cid, sels in contests.items():
        log.contest(cid, sels, number_elected=1)
    for s in stations:
        for cid, sels in contests.items():
            if rnd.random() < 0.3:
                continue
            votes: dict[str, Any] = {}
            for sel in rnd.sample(sels, rnd.randint(1, len(sels))):
                n = rnd.randint(0, 100) + ((1 << 53) if big and rnd.random() < 0.5 else 0)
                votes[sel] = {"ELECTION_DAY": n, "MAIL": rnd.choice([None, 3])} if rnd.random() < 0.3 else n
            log.tally2(s, cid, votes, valid=None)
    return log


def _division_rows(tables: dict[str, pa.Table]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["contest_id"], r["unit_id"], r["selection_id"]): r for r in tables[t.CONTEST_RESULTS].to_pylist()
            if r["level"] == "division"}


@pytest.mark.parametrize("seed", range(12))
def test_division_sums_are_the_station_rows_summed_over_what_each_station_composes_into(seed: int) -> None:
    tables = fold(_random_election(seed, big=seed % 3 == 0).records)
    divisions = tables[t.DIVISIONS].select(list(_DIVISIONS.names)).to_pylist()
    expected: dict[tuple[str, str, str], dict[str, Any]] = {}
    summed = ("votes", *t.METHOD_COLUMNS, "methods_unknown", "stations")
    for r in tables[t.CONTEST_RESULTS].to_pylist():
        if r["level"] != "station":
            continue
        for unit in _reach(divisions, r["unit_id"]):
            e = expected.setdefault((r["contest_id"], unit, r["selection_id"]), dict.fromkeys(summed))
            for c in summed:
                if r[c] is not None:
                    e[c] = (e[c] or 0) + r[c]
    got = _division_rows(tables)
    assert {k: {c: v[c] for c in summed} for k, v in got.items()} == expected
    keys = [(r["contest_id"], r["level"], r["unit_id"], r["selection_id"])
            for r in tables[t.CONTEST_RESULTS].to_pylist()]
    assert keys == sorted(keys, key=lambda k: tuple(x.encode() for x in k))


def test_sums_beyond_float64_exact_range_are_exact() -> None:
    log = Log()
    log.election()
    log.division(COUNTRY, "COUNTRY", None)
    log.division(muni("a"), "MUNICIPALITY", COUNTRY)
    big = (1 << 53) + 1  # 2**53 + 1 is not a float64: a float sum would lose the 1s
    for i in range(3):
        log.division(f"{COUNTRY}/precinct:p{i}", "PRECINCT", COUNTRY)
        log.tally2(f"{COUNTRY}/precinct:p{i}", ELECTION, {"candidate:a": big}, valid=None, municipality_id=muni("a"))
    tables = fold(log.records)
    whole = {r["level"]: r["votes"] for r in tables[t.CONTEST_RESULTS].to_pylist()
             if r["unit_id"] in (COUNTRY, ELECTION)}
    assert whole == {"division": 3 * big, "contest": 3 * big}
    assert [r["votes"] for r in tables[t.MUNICIPALITY_RESULTS].to_pylist()] == [3 * big]


@pytest.mark.parametrize("path", ["integer sums", "rows summed directly", "rows scattered to their places",
                                  "contests searched among the division ids"])
def test_every_summing_path_gives_the_same_table(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    records = _random_election(5).records
    fast = fold(records)
    if path == "contests searched among the division ids":
        monkeypatch.setattr(cr, "_FEW_CONTESTS", 0)  # a small election's contests are binary-searched too
    elif path == "integer sums":
        monkeypatch.setattr(build, "EXACT_FLOAT", 0)  # every sum through Arrow's integer sum
    elif path == "rows summed directly":
        monkeypatch.setattr(cr, "_dense_enough", lambda n_bins, n_rows: False)  # no (block, selection) bins
    else:
        monkeypatch.setattr(cr._Place, "MANY_RUNS", 0)  # one scatter, not a copy per run
    slow = fold(records)
    assert slow[t.CONTEST_RESULTS].equals(fast[t.CONTEST_RESULTS])
    assert slow[t.MUNICIPALITY_RESULTS].equals(fast[t.MUNICIPALITY_RESULTS])
