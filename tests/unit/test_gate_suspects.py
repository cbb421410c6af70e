"""The gate's pre-pass (``pipelines.gate.suspects``) flags every row Great Expectations rejects, and no null row
for a check that GX does not judge nulls in: a loose pre-pass is never wrong, only slow (GX then validates
rows it accepts), so the second half is what keeps a million-station gate fast."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.gate import checks as c
from pipelines.gate import runner
from pipelines.gate.checks import CheckSpec
from pipelines.gate.suspects import failing

TABLE = "divisions"  # any table name: the suite is made of the specs below, not the table's own checks

CASES = {
    c.NOT_NULL: ("n", {}),
    c.UNIQUE: ("s", {}),
    c.BETWEEN: ("n", {"min_value": 0, "max_value": 5}),
    c.IN_SET: ("b", {"value_set": [True]}),
    c.MATCH_REGEX: ("s", {"regex": r"^[a-c]\d$"}),
}
numbers = st.lists(st.one_of(st.none(), st.integers(-3, 8)), min_size=1, max_size=30)
texts = st.lists(st.one_of(st.none(), st.sampled_from(["a1", "b2", "c3", "d4", "a", "b22"])), min_size=1, max_size=30)
flags = st.lists(st.one_of(st.none(), st.booleans()), min_size=1, max_size=30)


@pytest.fixture(scope="module")
def gx_context():
    return runner.new_context()


def _frame(n: list, s: list, b: list, dictionary: bool) -> pa.Table:
    rows = min(len(n), len(s), len(b))
    text = pa.array(s[:rows], pa.string())
    return pa.table({"n": pa.array(n[:rows], pa.int64()), "s": text.dictionary_encode() if dictionary else text,
                     "b": pa.array(b[:rows], pa.bool_())})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=numbers, s=texts, b=flags, dictionary=st.booleans())
def test_every_row_gx_rejects_is_flagged_and_no_null_is_but_for_not_null(gx_context, monkeypatch, n: list, s: list,
                                                                        b: list, dictionary: bool) -> None:
    frame = _frame(n, s, b, dictionary)
    specs = tuple(CheckSpec(TABLE, kind, kind, True, kind, column, kwargs)
                  for kind, (column, kwargs) in CASES.items())
    # GX judges every row: the pre-pass is bypassed, so its verdicts are the reference.
    monkeypatch.setattr(runner, "suspect_rows", lambda frame, specs: np.arange(frame.num_rows))
    _, rejected = runner.failing_rows(gx_context, TABLE, specs, frame)
    for spec in specs:
        flagged = failing(spec, frame[spec.column]).to_numpy(zero_copy_only=False)
        assert set(rejected[spec.name]) <= set(np.flatnonzero(flagged)), spec.name
        nulls = frame[spec.column].is_null().to_numpy(zero_copy_only=False)
        if spec.expectation != c.NOT_NULL:
            assert not (flagged & nulls).any(), spec.name
