"""The column decoder must give exactly what fastavro plus ``pa.array`` give, for every schema the log carries,
and must refuse (MalformedBody) rather than guess when a body is damaged."""

from __future__ import annotations

import functools
import io
import json
import math
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.kafka import avro_columns
from pipelines.kafka.avro_columns import MalformedBody, Unsupported, arrow_type, decode
from pipelines.kafka.serde import without_logical_types

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILES = sorted(p.relative_to(ROOT).as_posix() for pattern in ("schemas/*.avsc", "schemas/published/*/*.avsc")
                      for p in ROOT.glob(pattern))

# Every type the decoder handles, nested the ways the real schemas nest them and then some: named types used
# again by full name (an enum in a union, a record as array items), a union with null second, a single-branch
# union, arrays of arrays, records in arrays in records in arrays.
KITCHEN_SINK = {
    "type": "record", "name": "Sink", "namespace": "test.avro_columns", "fields": [
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "s", "type": "string"},
        {"name": "raw", "type": "bytes"},
        {"name": "nothing", "type": "null"},
        {"name": "colour", "type": {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN", "BLUE"]}},
        {"name": "maybe_colour", "type": ["test.avro_columns.Colour", "null"]},
        {"name": "only", "type": ["long"]},
        {"name": "maybe_d", "type": ["null", "double"]},
        {"name": "grid", "type": {"type": "array", "items": {"type": "array", "items": ["null", "string"]}}},
        {"name": "parts", "type": {"type": "array", "items": {
            "type": "record", "name": "Part", "fields": [
                {"name": "name", "type": "string"},
                {"name": "colour", "type": "Colour"},
                {"name": "weights", "type": {"type": "array", "items": "float"}},
                {"name": "sub", "type": ["null", {"type": "record", "name": "Sub", "fields": [
                    {"name": "tags", "type": {"type": "array", "items": "bytes"}},
                    {"name": "n", "type": ["null", "int"]},
                ]}]},
            ]}}},
        {"name": "more_parts", "type": {"type": "array", "items": "test.avro_columns.Part"}},
        {"name": "maybe_part", "type": ["null", "Part"]},
        {"name": "flags", "type": {"type": "array", "items": "boolean"}},
    ],
}


def _parse(raw: Any) -> Any:
    return fastavro.parse_schema(without_logical_types(raw))


@functools.cache
def _load(name: str) -> Any:
    if name == "kitchen-sink":
        return _parse(KITCHEN_SINK)
    return _parse(json.loads((ROOT / name).read_text()))


def _supported(name: str) -> Any:
    schema = _load(name)
    try:
        arrow_type(schema)
    except Unsupported as exc:
        pytest.skip(f"{name}: the column decoder does not handle this schema ({exc}); it is read record by record")
    return schema


# --- random valid records -------------------------------------------------------------------------------------

_PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "string": st.text(),
    "bytes": st.binary(),
}


def _values(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Random values fastavro can write with ``schema`` (the parsed form: named types by full name)."""
    if isinstance(schema, str):
        return _PRIMITIVES[schema] if schema in _PRIMITIVES else _values(named[schema], named)
    if isinstance(schema, list):
        return st.one_of([_values(branch, named) for branch in schema])
    kind = schema["type"]
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: _values(f["type"], named) for f in schema["fields"]})
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(_values(schema["items"], named), max_size=5)
    return _values(kind, named)  # {"type": "string"} and the like


def _batches(schema: Any, min_size: int = 0) -> st.SearchStrategy[list[bytes]]:
    return st.lists(_values(schema, schema["__named_schemas"]), min_size=min_size, max_size=20).map(
        lambda records: [_encode(schema, record) for record in records])


def _encode(schema: Any, record: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()


def _fastavro(schema: Any, bodies: list[bytes]) -> pa.Array:
    return pa.array([fastavro.schemaless_reader(io.BytesIO(b), schema, None) for b in bodies], type=arrow_type(schema))


# --- equal to fastavro ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SCHEMA_FILES + ["kitchen-sink"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_decode_equals_fastavro(name: str, data: st.DataObject) -> None:
    schema = _supported(name)
    bodies = data.draw(_batches(schema), label="bodies")
    got = decode(schema, bodies)
    assert isinstance(got, pa.StructArray) and got.null_count == 0
    assert got.equals(_fastavro(schema, bodies))
    got.validate(full=True)
    _assert_no_nulls_in_non_nullable_fields(got)


def _assert_no_nulls_in_non_nullable_fields(array: pa.Array) -> None:
    """Not even under a null record, where ``equals`` does not look: Parquet refuses such columns."""
    if isinstance(array, pa.StructArray):
        for i, field in enumerate(array.type):
            child = array.field(i)
            assert field.nullable or child.null_count == 0, field
            _assert_no_nulls_in_non_nullable_fields(child)
    elif isinstance(array, pa.ListArray):
        assert array.type.value_field.nullable or array.values.null_count == 0, array.type
        _assert_no_nulls_in_non_nullable_fields(array.values)


def test_only_schemas_with_a_map_are_unsupported() -> None:
    reasons = {}
    for name in SCHEMA_FILES:
        try:
            arrow_type(_load(name))
        except Unsupported as exc:
            reasons[name] = str(exc)
    assert "schemas/io.ballotstream.StationTally.avsc" not in reasons
    assert all("'map'" in reason for reason in reasons.values()), reasons


def test_station_tally_arrow_type() -> None:
    schema = _load("schemas/io.ballotstream.StationTally.avsc")
    kind = arrow_type(schema)
    assert kind.field("occurred_at").type == pa.int64() and not kind.field("occurred_at").nullable
    assert kind.field("status").type == pa.string()
    assert kind.field("registered_voters").type == pa.int32() and kind.field("registered_voters").nullable
    votes = kind.field("votes").type
    assert votes.value_type.field("by_method").type.value_type.field("method").type == pa.string()
    assert kind.field("supersedes").type == pa.struct([pa.field("event_id", pa.string(), nullable=False),
                                                       pa.field("reason", pa.string(), nullable=False)])


def test_no_bodies_give_an_empty_struct_array_of_the_type() -> None:
    schema = _load("schemas/io.ballotstream.StationTally.avsc")
    got = decode(schema, [])
    assert isinstance(got, pa.StructArray) and len(got) == 0 and got.type == arrow_type(schema)


def test_bodies_may_be_bytearrays_and_memoryviews() -> None:
    schema = _load("kitchen-sink")
    body = _encode(schema, _SINK_RECORD)
    framed = b"\0\0\0\0\1" + body
    bodies = [body, bytearray(body), memoryview(framed)[5:], memoryview(body).cast("B")]
    assert decode(schema, bodies).equals(_fastavro(schema, [body] * 4))


def test_buffers_past_two_gigabytes_take_the_64_bit_offsets_path(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = _load("kitchen-sink")
    bodies = [_encode(schema, _SINK_RECORD), _encode(schema, dict(_SINK_RECORD, maybe_part=None, s=""))]
    monkeypatch.setattr(avro_columns, "_WIDE", 0)  # 2 GB of bodies would be too slow for a unit test
    got = decode(schema, bodies)
    assert got.equals(_fastavro(schema, bodies)) and got.type == arrow_type(schema)


_SINK_RECORD = {
    "b": True, "i": -(2**31), "l": 2**63 - 1, "f": 1.5, "d": -0.0, "s": "é€😀", "raw": b"\0\xff", "nothing": None,
    "colour": "BLUE", "maybe_colour": None, "only": -1, "maybe_d": math.inf, "grid": [[], ["a", None], [None]],
    "parts": [{"name": "", "colour": "RED", "weights": [0.25], "sub": {"tags": [b"", b"x"], "n": None}},
              {"name": "p", "colour": "GREEN", "weights": [], "sub": None}],
    "more_parts": [], "maybe_part": {"name": "q", "colour": "RED", "weights": [], "sub": None}, "flags": [False],
}


# --- arrays in several blocks ---------------------------------------------------------------------------------

BLOCKS = _parse({"type": "record", "name": "Blocks", "namespace": "test.avro_columns", "fields": [
    {"name": "xs", "type": {"type": "array", "items": "long"}},
    {"name": "rows", "type": {"type": "array", "items": {"type": "record", "name": "Row", "fields": [
        {"name": "name", "type": "string"},
        {"name": "tags", "type": {"type": "array", "items": ["null", "int"]}},
    ]}}},
    {"name": "after", "type": "string"},
]})


def _zigzag(n: int) -> bytes:
    """An Avro long, encoded here independently of fastavro and of the decoder."""
    value = (n << 1) ^ (n >> 63)
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _text(s: str) -> bytes:
    return _zigzag(len(s.encode())) + s.encode()


def _array(*blocks: tuple[list[bytes], bool]) -> bytes:
    """Blocks of encoded items, each with a positive count, or a negative count followed by its byte size."""
    out = b""
    for items, negative in blocks:
        data = b"".join(items)
        out += (_zigzag(-len(items)) + _zigzag(len(data)) if negative else _zigzag(len(items))) + data
    return out + _zigzag(0)


def _row(name: str, *tag_blocks: tuple[list[bytes], bool]) -> bytes:
    return _text(name) + _array(*tag_blocks)


_NULL, _INT = _zigzag(0), _zigzag(1)  # union branch indexes


def _multi_block_bodies() -> list[bytes]:
    first = (_array(([_zigzag(1), _zigzag(-2)], False), ([_zigzag(2**40), _zigzag(0), _zigzag(-(2**63))], True))
             + _array(([_row("a", ([_NULL, _INT + _zigzag(7)], True), ([_INT + _zigzag(-1)], False))], True),
                      ([_row("bb"), _row("", ([_NULL], False), ([_NULL], True))], False))
             + _text("end"))
    second = _array(([_zigzag(5)], True), ([_zigzag(6)], True)) + _array() + _text("")
    third = _encode(BLOCKS, {"xs": [9, 8], "rows": [{"name": "z", "tags": [3, None]}], "after": "x"})
    return [first, second, third, first]


def test_arrays_in_several_blocks_and_negative_counts_equal_fastavro() -> None:
    bodies = _multi_block_bodies()
    for body in bodies:  # the hand encoding is valid: fastavro reads every byte of it
        reader = io.BytesIO(body)
        fastavro.schemaless_reader(reader, BLOCKS, None)
        assert reader.tell() == len(body)
    got = decode(BLOCKS, bodies)
    assert got.equals(_fastavro(BLOCKS, bodies))
    assert got[0].as_py() == {
        "xs": [1, -2, 2**40, 0, -(2**63)],
        "rows": [{"name": "a", "tags": [None, 7, -1]}, {"name": "bb", "tags": []},
                 {"name": "", "tags": [None, None]}],
        "after": "end",
    }
    assert got[1].as_py() == {"xs": [5, 6], "rows": [], "after": ""}


# --- malformed bodies -----------------------------------------------------------------------------------------

def _same(a: pa.Array, b: pa.Array) -> bool:
    """Equal values of equal type, a NaN (a flipped double can become one) being equal to a NaN."""
    def canonical(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return "NaN"
        if isinstance(value, dict):
            return {k: canonical(v) for k, v in value.items()}
        if isinstance(value, list):
            return [canonical(v) for v in value]
        return value
    return a.type == b.type and canonical(a.to_pylist()) == canonical(b.to_pylist())


def _damage(data: st.DataObject, body: bytes) -> bytes:
    how = data.draw(st.sampled_from(["truncate", "append", "flip"]), label="how")
    if how == "truncate":
        return body[:data.draw(st.integers(0, max(len(body) - 1, 0)), label="keep")]
    if how == "append":
        return body + bytes([data.draw(st.integers(0, 255), label="byte")])
    damaged = bytearray(body)
    for _ in range(data.draw(st.integers(1, 3), label="flips")):
        if damaged:
            at = data.draw(st.integers(0, len(damaged) - 1), label="at")
            damaged[at] ^= data.draw(st.integers(1, 255), label="xor")
    return bytes(damaged)


def _assert_rejected_or_exact(schema: Any, bodies: list[bytes]) -> None:
    try:
        got = decode(schema, bodies)
    except MalformedBody:
        return
    values = []
    for body in bodies:  # it decoded, so every body must be a valid encoding, read as fastavro reads it
        reader = io.BytesIO(body)
        try:
            values.append(fastavro.schemaless_reader(reader, schema, None))
        except Exception as exc:  # whatever fastavro raises, the decoder should have refused the body
            pytest.fail(f"decoded a body fastavro rejects ({exc!r}): {body!r}")
        assert reader.tell() == len(body), f"decoded a body fastavro does not read to its end: {body!r}"
    assert _same(got, pa.array(values, type=arrow_type(schema)))


@pytest.mark.parametrize("name", SCHEMA_FILES + ["kitchen-sink"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_damaged_bodies_raise_malformed_or_decode_exactly(name: str, data: st.DataObject) -> None:
    schema = _supported(name)
    bodies = data.draw(_batches(schema, min_size=1), label="bodies")
    at = data.draw(st.integers(0, len(bodies) - 1), label="damaged")
    bodies[at] = _damage(data, bodies[at])
    _assert_rejected_or_exact(schema, bodies)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_damaged_multi_block_bodies_raise_malformed_or_decode_exactly(data: st.DataObject) -> None:
    bodies = _multi_block_bodies()
    at = data.draw(st.integers(0, len(bodies) - 1), label="damaged")
    bodies[at] = _damage(data, bodies[at])
    _assert_rejected_or_exact(BLOCKS, bodies)


SMALL = _parse({"type": "record", "name": "Small", "namespace": "test.avro_columns", "fields": [
    {"name": "i", "type": "int"},
    {"name": "l", "type": "long"},
    {"name": "s", "type": "string"},
    {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
    {"name": "u", "type": ["null", "boolean"]},
    {"name": "a", "type": {"type": "array", "items": "double"}},
]})


def _small(**fields: bytes) -> bytes:
    """A SMALL body, {"i": 1, "l": 2, "s": "x", "e": "B", "u": True, "a": []}, with some fields' bytes replaced."""
    parts = {"i": _zigzag(1), "l": _zigzag(2), "s": _text("x"), "e": _zigzag(1), "u": _INT + b"\x01",
             "a": _zigzag(0)}
    parts.update(fields)
    return b"".join(parts.values())


@pytest.mark.parametrize(("body", "message"), [
    pytest.param(_small()[:-1], "body 1 at field a", id="truncated"),
    pytest.param(_small() + b"\0", "body 1: 1 bytes are left", id="trailing byte"),
    pytest.param(b"", "body 1 at field i", id="empty"),
    pytest.param(_small(i=_zigzag(2**31)), "out of the 32-bit range", id="int too large"),
    pytest.param(_small(i=_zigzag(-(2**31) - 1)), "out of the 32-bit range", id="int too small"),
    pytest.param(_small(l=b"\xff" * 10 + b"\x01"), "longer than 10 bytes", id="11-byte varint"),
    pytest.param(_small(s=_zigzag(-1)), "negative length", id="negative length"),
    pytest.param(_small(s=_zigzag(50) + b"abc"), "body 1 at field s: a string or bytes runs past the end",
                 id="string past the end"),
    pytest.param(_small(s=_zigzag(6) + b"x"), "body 1 at field s: a string or bytes runs past the end",
                 id="string one byte past the end"),
    pytest.param(_small(s=_zigzag(3) + "\udcff".encode("utf-8", "surrogatepass")), "not valid UTF-8",
                 id="surrogate"),
    pytest.param(_small(s=_zigzag(2) + b"\xc3\x28"), "body 1 at field s: a string is not valid UTF-8",
                 id="bad UTF-8"),
    pytest.param(_small(e=_zigzag(2)), "enum index is out of range", id="enum index too large"),
    pytest.param(_small(e=_zigzag(-1)), "enum index is out of range", id="negative enum index"),
    pytest.param(_small(u=_zigzag(2) + b"\x01"), "union branch index is out of range", id="branch too large"),
    pytest.param(_small(u=_zigzag(-1)), "union branch index is out of range", id="negative branch"),
    pytest.param(_small(u=_INT + b"\x02"), "neither 0 nor 1", id="boolean 2"),
    pytest.param(_small(a=_zigzag(2) + b"\0" * 8 + _zigzag(0)), "body 1 at field a: a double runs past",
                 id="fewer items than counted"),
    pytest.param(_small(a=_zigzag(-(2**63)) + _zigzag(8) + b"\0" * 8), "block count is out of range",
                 id="count -2**63"),
    pytest.param(_small(a=_zigzag(-1) + _zigzag(8)), "at field a", id="negative count, no item"),
    pytest.param(_small(a=_zigzag(1) + b"\0" * 8), "at field a", id="no closing block"),
])
def test_malformed_bodies_are_named(body: bytes, message: str) -> None:
    with pytest.raises(MalformedBody, match=message.replace("(", r"\(")):
        decode(SMALL, [_small(), body, _small()])


def test_a_good_small_body_decodes() -> None:  # the one the malformed cases above are made from
    assert decode(SMALL, [_small()]).to_pylist() == [{"i": 1, "l": 2, "s": "x", "e": "B", "u": True, "a": []}]


def test_a_memoryview_of_wider_items_counts_its_bytes() -> None:
    body = _small()
    assert len(body) % 2 == 0
    assert decode(SMALL, [memoryview(body).cast("H"), body]).equals(decode(SMALL, [body, body]))


# --- unsupported schemas --------------------------------------------------------------------------------------

def _with_field(kind: Any) -> Any:
    return {"type": "record", "name": "R", "namespace": "test.avro_columns",
            "fields": [{"name": "ok", "type": "int"}, {"name": "x", "type": kind}]}


@pytest.mark.parametrize("kind", [
    {"type": "map", "values": "long"},
    {"type": "fixed", "name": "F", "size": 4},
    ["int", "string"],
    ["null", "int", "string"],
    ["null"],
    {"type": "array", "items": "null"},
    {"type": "array", "items": {"type": "array", "items": {"type": "map", "values": "int"}}},
    {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]},
])
def test_unsupported_types_raise_unsupported(kind: Any) -> None:
    schema = _parse(_with_field(kind))
    with pytest.raises(Unsupported):
        arrow_type(schema)
    with pytest.raises(Unsupported):
        decode(schema, [b"\0"])
