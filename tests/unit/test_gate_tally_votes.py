"""``frames._tally_votes`` (the turnout checks' sum of votes per tally) equals Arrow's hash group-by, whatever the
rows' order, nulls and encoding (the segment reduction assumes nothing of them)."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.gate.frames import _tally_votes

KEYS = ["election_id", "contest_id", "station_id"]
S = pa.string()

rows = st.lists(st.tuples(st.sampled_from(["e1", "e2", None]), st.sampled_from(["c1", "c2"]),
                          st.sampled_from(["s1", "s2", "s3", None]),
                          st.one_of(st.none(), st.integers(min_value=0, max_value=10**12))), max_size=40)


def _table(values: list[tuple], dictionary: bool, ordered: bool) -> pa.Table:
    columns = list(zip(*values, strict=True)) if values else [[], [], [], []]
    table = pa.table({**{k: pa.array(list(col), S) for k, col in zip(KEYS, columns[:3], strict=True)},
                      "votes": pa.array(list(columns[3]), pa.int64())})
    if ordered:
        table = table.sort_by([(k, "ascending") for k in KEYS])
    if dictionary:  # as read from several files: a dictionary per chunk
        half = table.num_rows // 2
        table = pa.concat_tables([pa.table({k: (c.combine_chunks().dictionary_encode() if k in KEYS else c)
                                            for k, c in zip(part.column_names, part.columns, strict=True)})
                                  for part in (table.slice(0, half), table.slice(half))])
    return table


def _rows(table: pa.Table) -> list[str]:
    plain = table.select([*KEYS, "votes_sum"]).cast(pa.schema([*(pa.field(k, S) for k in KEYS),
                                                               pa.field("votes_sum", pa.int64())]))
    return sorted(map(repr, plain.to_pylist()))


@settings(max_examples=200, deadline=None)
@given(values=rows, dictionary=st.booleans(), ordered=st.booleans())
def test_tally_votes_equals_a_hash_group_by(values: list[tuple], dictionary: bool, ordered: bool) -> None:
    table = _table(values, dictionary, ordered)
    plain = table.cast(pa.schema([*(pa.field(k, S) for k in KEYS), pa.field("votes", pa.int64())]))
    expected = plain.group_by(KEYS).aggregate([("votes", "sum")])
    assert _rows(_tally_votes(table)) == _rows(expected)
