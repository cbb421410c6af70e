"""JSON text built a column at a time (pipelines/release/cdf_json.py): the same text json.dumps writes, row for
row, and ids compared by code in the order of their strings."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from pipelines.release import cdf_json as js

WORDS = ["plain", 'a "quoted" word', "back\\slash", "line\nbreak", "tab\there", "bell\x07", "Ľudová ✓",
         "\u2028 separator", "", None]


def _dumps(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def test_strings_are_written_as_json_dumps_writes_them():
    for values in (pa.array(WORDS), pa.array(WORDS).dictionary_encode(),
                   pa.chunked_array([pa.array(WORDS[:4]), pa.array(WORDS[4:])])):
        assert js.string(values).to_pylist() == [None if w is None else _dumps(w) for w in WORDS]
    assert js.integer(pa.array([0, -7, None, 2**53 + 1])).to_pylist() == ["0", "-7", None, str(2**53 + 1)]


def test_objects_leave_out_null_members_and_keep_every_row():
    ids = js.string(pa.array(["a", "b", "c"]))
    count = js.integer(pa.array([1, None, None]))
    note = js.string(pa.array([None, "x", None]))
    # Row "c" has no optional member at all (Arrow 26's "skip" null handling dropped such rows).
    out = js.obj(3, [("@id", ids), ("@type", '"T"'), ("Count", count), ("Note", note)])
    assert [json.loads(o) for o in out.to_pylist()] == [
        {"@id": "a", "@type": "T", "Count": 1}, {"@id": "b", "@type": "T", "Note": "x"}, {"@id": "c", "@type": "T"}]
    assert out.to_pylist()[0] == _dumps({"@id": "a", "@type": "T", "Count": 1})
    with pytest.raises(ValueError, match="sorted"):
        js.obj(3, [("b", ids), ("a", ids)])
    with pytest.raises(ValueError, match="first field"):
        js.obj(3, [("Count", count)])


def test_runs_become_arrays_and_a_document_part_without_copies():
    items = js.string(pa.array(["x", "y", "z", "w"]))
    starts = js.runs(pa.array(["k1", "k1", "k2", "k3"]))
    assert starts.tolist() == [0, 2, 3, 4]
    assert js.arrays(items, starts).to_pylist() == ['["x","y"]', '["z"]', '["w"]']
    separated = js.obj(4, [("v", items)], before=js.separators(starts))
    assert separated.to_pylist() == ['{"v":"x"}', ',{"v":"y"}', '{"v":"z"}', '{"v":"w"}']
    whole = js.obj(4, [("v", items)], before=js.separators(np.array([0, 4])))
    text = js.concatenated(whole.slice(1))
    assert text.to_pybytes() == b',{"v":"y"},{"v":"z"},{"v":"w"}'
    assert text.address >= whole.buffers()[2].address  # a view of the array's bytes
    assert js.concatenated(pa.array([], js.TEXT)).to_pybytes() == b""


def test_ranked_codes_sort_and_group_as_the_strings_do():
    # Two files' dictionaries, each with entries no row uses (a filtered read keeps the file's dictionary).
    one = pa.DictionaryArray.from_arrays(pa.array([2, 0, None, 2], pa.int32()), pa.array(["b", "zz-unused", "a"]))
    two = pa.DictionaryArray.from_arrays(pa.array([1, 1, 0], pa.int32()), pa.array(["c", "a", "unused"]))
    codes, values = js.ranked(pa.chunked_array([one, two]))
    assert values.to_pylist() == ["a", "b", "c"]
    assert codes.tolist() == [0, 1, -1, 0, 0, 0, 2]
    plain_codes, plain_values = js.ranked(pa.array(["b", None, "a", "b"]))
    assert (plain_codes.tolist(), plain_values.to_pylist()) == ([1, -1, 0, 1], ["a", "b"])
