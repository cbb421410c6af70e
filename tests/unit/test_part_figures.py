"""station_turnout files' national figures kept by sha256 (``pipelines.release.part_figures``): what is read
back is what was computed; an entry cut short, altered or of another version is computed again, never used."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipelines.fold.summary import part_figures
from pipelines.release import part_figures as kept
from pipelines.release.part_figures import FiguresCache

SHA = "ab" * 32


def _part(stations: list[str | None], election: str = "e-1") -> pa.Table:
    n = len(stations)
    return pa.table({"election_id": [election] * n, "contest_id": [election] * n, "station_id": stations,
                     "municipality_id": ["m-2", None, "m-1"][:n] + ["m-1"] * max(n - 3, 0),
                     "registered_voters": pa.array([100, None] * (n // 2) + [7] * (n % 2), pa.int64()),
                     "ballots_cast": pa.array([40] * n, pa.int64()), "valid_ballots": pa.array([None] * n, pa.int64()),
                     "invalid_ballots": pa.array(range(n), pa.int64())})


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return (a.election, a.totals, a.municipalities) == (b.election, b.totals, b.municipalities) \
        and np.array_equal(a.prints, b.prints)


@pytest.mark.parametrize("stations", [["st-1", "st-2", "st-3", None], [], ["st-1", "st-1"]],
                         ids=["summable", "empty", "a-station-twice"])
def test_what_is_kept_is_what_was_computed(stations: list[str | None], tmp_path: Path) -> None:
    figures = part_figures(_part(stations))
    assert _same(kept.decode(kept.encode(figures)), figures)
    cache = FiguresCache(tmp_path)
    assert _same(cache.of(SHA, lambda: _part(stations)), figures)
    assert _same(cache.of(SHA, _unread), figures)
    assert [p.name.split(".")[0] for p in tmp_path.iterdir()] == [SHA]  # pruned with the table's files


def test_the_summable_figures_are_the_part_s_sums_and_counts() -> None:
    figures = part_figures(_part(["st-1", "st-2", "st-3"]))
    assert figures.election == "e-1" and figures.municipalities == ("m-1", "m-2")
    assert figures.totals["registered_voters_sum"] == 107 and figures.totals["registered_voters_count"] == 2
    assert figures.totals["valid_ballots_sum"] is None and figures.totals["valid_ballots_count"] == 0
    assert len(figures.prints) == 3 and list(figures.prints) == sorted(figures.prints)
    assert part_figures(pa.concat_tables([_part(["st-1"]), _part(["st-2"], "e-2")])) is None  # two elections


@pytest.mark.parametrize("damage", ["cut", "flipped", "other-version", "not-json"])
def test_a_damaged_or_foreign_entry_is_computed_again(damage: str, tmp_path: Path) -> None:
    part = _part(["st-1", "st-2"])
    cache = FiguresCache(tmp_path)
    cache.of(SHA, lambda: part)
    [path] = tmp_path.iterdir()
    data = path.read_bytes()
    if damage == "cut":
        path.write_bytes(data[:-40])
    elif damage == "flipped":
        path.write_bytes(data[:20] + bytes([data[20] ^ 1]) + data[21:])
    elif damage == "other-version":
        path.rename(tmp_path / f"{SHA}.0000000000000000{kept.SUFFIX}")
    else:  # a checksum that matches bytes encode never wrote
        body = (5).to_bytes(8, "little") + b"{nope"
        path.write_bytes(body + hashlib.sha256(body).digest())
    reads = []
    assert _same(cache.of(SHA, lambda: reads.append(1) or part), part_figures(part))
    assert reads == [1]
    assert _same(cache.of(SHA, _unread), part_figures(part))  # kept again, whole


def _unread() -> pa.Table:
    raise AssertionError("a kept entry was read again")
