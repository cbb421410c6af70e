"""A table's files from the last release's and a scope's new rows, reading only the files around those rows.

A delta of tallies changes the rows of its scope (``pipelines.fold.scope``) and nothing else. Every table file is
cut where a content-defined rule says (``parquet.chunk_bounds``): a run starts a file when its key is the
smallest within half a file of it, so a cut depends on the rows within half a file and nothing else. Cuts are
more than half a file apart; so, around the files that hold (or would hold) the scope's rows, the next two files
on each side hold none of them, and:

- the starts of the nearer neighbours are cuts as before, and no new cut falls inside the farther ones;
- every cut in between depends only on rows between the farther neighbours' starts and ends.

So in each such span of files the touched files and their nearer neighbours are read, their scope rows replaced,
the cuts found again on the span alone, and the files written (those whose data did not change are linked from
the cache, as in a full write); of the farther neighbours only the split column is read, the cuts beside them
depending on it, and they are linked as they are, like the files outside the spans.

Most often the nearer neighbours keep their bytes too: where the touched files' first row and the right
neighbour's stay cuts, the nearer neighbours are linked the same way and only the touched files are read
(``_near_linked``); else the span is staged as above. The result is byte for byte ``parquet.write_table_files``
of the whole table (``tests/unit/test_splice.py``). A table of few files is read whole.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.fold import tables as t
from pipelines.fold.allocator import give_back
from pipelines.fold.build import sorted_dictionary
from pipelines.release import reuse
from pipelines.release.parquet import (
    FileWriter,
    StagedFile,
    column_runs,
    compact,
    cuts,
    settled_before,
    tree_sha256,
    write_table_files,
)

# The columns of each scoped table's order that find a scope's rows: a contest's rows lie under (election,
# contest) or (contest), a municipality's under (election, municipality), an event's at its log position.
PREFIXES: dict[str, tuple[str, ...]] = {
    t.STATION_RESULTS: ("election_id", "contest_id"), t.STATION_TURNOUT: ("election_id", "contest_id"),
    t.WITHHELD: ("election_id", "contest_id"), t.CONTESTS: ("contest_id",), t.CONTEST_RESULTS: ("contest_id",),
    t.CONTEST_SUMMARY: ("contest_id",), t.MUNICIPALITY_RESULTS: ("election_id", "municipality_id"),
    t.EVENTS: t.LOG_ORDER, t.NONCURRENT_EVENTS: t.LOG_ORDER, t.CORRECTIONS: t.LOG_ORDER,
}
# Fewer files than this: the table is read and written whole (a span is up to five files anyway).
MIN_FILES = 8
# Files either side of those the scope touches: the nearer neighbour's cuts may move, the farther one is context.
NEIGHBOURS = 2
# A span's files are read, merged and written a few at a time, about this many rows (at least a file). A scope
# spread along the log touches every file of the events table: read as one span, the whole table was held two or
# three times over at once (0.8 GB of a 100,000-tally publish's peak at a million stations); a region's contests
# make spans of millions of contest_results rows.
WINDOW_ROWS = 600_000

# A merge slices its runs of rows in order while they are fewer than this share of its rows (a slice costs
# about as much as taking 64 rows); else it takes every row.
MAX_RUNS_PER_ROW = 1 / 64

Key = tuple
Link = Callable[[str, "OldFile", Path], StagedFile]


@dataclass(frozen=True)
class OldFile:
    """A file of the table in the last release: its local copy, checksum, rows and the order key of its first
    row (``first_keys``)."""

    path: Path
    sha256: str
    rows: int
    first: Key


def first_keys(name: str, paths: list[Path]) -> list[Key]:
    """The ``tables.ORDER`` key of each kept file's first row: noted beside it in the cache
    (``reuse.keep_first_key``), else read (one small batch; 6 ms a file, a second for the ~200 files of a
    million-station release) and noted for the next publish."""
    order = list(t.ORDER[name])
    out = []
    for path in paths:
        key = reuse.kept_first_key(path, len(order))
        if key is None:
            batch = next(pq.ParquetFile(path).iter_batches(batch_size=1, columns=order))
            key = tuple(batch.column(c)[0].as_py() for c in order)
            reuse.keep_first_key(path, key)
        out.append(key)
    return out


def _unified(chunks: list[pa.DictionaryArray], kind: pa.DataType) -> pa.DictionaryArray:
    """The chunks as one dictionary array whose dictionary is the sorted union of theirs: what a whole fold's
    column gives a file once compacted (``parquet.compact``), since the fold sorts its dictionaries."""
    if not chunks:
        return pa.DictionaryArray.from_arrays(pa.array([], kind.index_type), pa.array([], kind.value_type))
    # Only the values used: a fold's dictionary may hold a million ids for the thousand rows of a span.
    chunks = [compact(c) for c in chunks]
    # One ranking of every chunk's values: each chunk's slice of it maps its codes to the union's.
    merged, rank = sorted_dictionary(pa.chunked_array([c.dictionary for c in chunks], kind.value_type))
    indices, at = [], 0
    for c in chunks:
        remap = pa.array(rank[at:at + len(c.dictionary)], kind.index_type)
        at += len(c.dictionary)
        indices.append(remap.take(c.indices))
    return pa.DictionaryArray.from_arrays(pa.concat_arrays(indices), merged)


def _order_codes(column: pa.Array) -> np.ndarray:
    """Integers in the order of ``column``'s values (keys are never null)."""
    if pa.types.is_dictionary(column.type):  # its dictionary is sorted (``_unified``)
        return column.indices.to_numpy(zero_copy_only=False)
    if pa.types.is_integer(column.type):
        return column.to_numpy(zero_copy_only=False)
    return sorted_dictionary(column)[1]


def _one_key(codes: list[np.ndarray]) -> np.ndarray | None:
    """The order's integer codes as one int64 per row (mixed radix), in the same order; None when the radices'
    product would not fit."""
    key = np.zeros(len(codes[0]), np.int64)
    span = 1
    for code in codes:
        low, high = (int(code.min()), int(code.max())) if len(code) else (0, 0)
        radix = high - low + 1
        span *= radix
        if span >= 2 ** 62:
            return None
        key = key * radix + (code.astype(np.int64) - low)
    return key


def _merge_order(codes: list[np.ndarray], first: int) -> np.ndarray:
    """Where each row goes when rows ``[:first]`` and ``[first:]``, each already in order, are merged: what a
    stable sort of all of them gives (of equal keys, the first part's rows first), in one pass instead of a
    sort of every row (``np.lexsort`` of a span's half-million rows took a tenth of a second a table)."""
    key = _one_key(codes)
    if key is None or np.any(key[1:first] < key[:max(first - 1, 0)]) or np.any(key[first + 1:] < key[first:-1]):
        return np.lexsort(codes[::-1])  # not two runs in order: sorted as they are
    old, new = key[:first], key[first:]
    at = np.searchsorted(old, new, side="right") + np.arange(len(new))
    order = np.empty(len(key), np.int64)
    is_new = np.zeros(len(key), bool)
    is_new[at] = True
    order[at] = np.arange(first, len(key))
    order[~is_new] = np.arange(first)
    return order


def _merged(name: str, parts: list[pa.Table], schema: pa.Schema) -> pa.Table:
    """The rows of two ``parts``, each in ``ORDER`` with its dictionaries sorted, as one table in ``ORDER`` and
    ``schema``: dictionaries unified, not decoded, and the two runs merged by integer codes of the order's
    columns, not by their strings."""
    old, new = parts
    chunks = {f.name: [c for part in parts for c in part[f.name].chunks] for f in schema}
    cols = {f.name: _unified(chunks[f.name], f.type) for f in schema if pa.types.is_dictionary(f.type)}
    merging = old.num_rows > 0 and new.num_rows > 0
    order = _merge_order([_order_codes(cols[c] if c in cols else _concat(chunks[c], schema.field(c).type))
                          for c in t.ORDER[name]], old.num_rows) if merging else None
    runs = _runs(order) if merging else None
    out = []
    for f in schema:
        if f.name in cols:  # a dictionary column: its codes taken, the values stay put
            out.append(cols[f.name] if order is None else cols[f.name].take(pa.array(order, pa.int64())))
        elif order is None:
            out.append(_concat(chunks[f.name], f.type))
        elif runs is not None:  # the runs of rows in order sliced and copied once, no gather of each row
            both = pa.chunked_array(chunks[f.name], f.type)
            out.append(pa.concat_arrays([c for at, n in zip(*runs) for c in both.slice(at, n).chunks]))
        else:
            out.append(_concat(chunks[f.name], f.type).take(pa.array(order, pa.int64())))
    return pa.Table.from_arrays(out, schema=schema)


def _concat(chunks: list[pa.Array], kind: pa.DataType) -> pa.Array:
    return pa.concat_arrays(chunks) if chunks else pa.array([], kind)


def _runs(order: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``order`` as runs of consecutive rows (their first rows and lengths), or None when there are so many that a
    take of every row is cheaper than a slice of each run."""
    breaks = np.flatnonzero(np.diff(order) != 1) + 1
    if len(breaks) + 1 > max(len(order) * MAX_RUNS_PER_ROW, 1):
        return None
    bounds = np.concatenate([[0], breaks, [len(order)]])
    return order[bounds[:-1]], np.diff(bounds)


def _key_at(table: pa.Table, name: str, row: int) -> Key:
    return tuple(table[c][row].as_py() for c in t.ORDER[name])


def _rows_between(table: pa.Table, name: str, low: Key | None, high: Key | None) -> pa.Table:
    """The rows of ``table`` (sorted by ``ORDER``) with key at least ``low`` and below ``high`` (None: unbounded)."""
    n = table.num_rows
    keys = _Keys(table, name)
    start = 0 if low is None else bisect_left(keys, low, 0, n)
    stop = n if high is None else bisect_left(keys, high, 0, n)
    return table.slice(start, max(0, stop - start))


class _Keys:
    """A sorted table's order keys, read one at a time (a bisection reads ~20 of a million)."""

    def __init__(self, table: pa.Table, name: str) -> None:
        self.table, self.name = table, name

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, row: int) -> Key:
        return _key_at(self.table, self.name, row)


class SortedKeys:
    """Keys as rows of a table sorted on its columns (in Python's tuple order), read one at a time: the scope's
    log positions are tens of thousands, and making each a tuple to look it up among a few files' first keys
    took most of a second of a publish."""

    def __init__(self, table: pa.Table) -> None:
        self.columns = [table[c].combine_chunks() for c in table.column_names]
        self.rows = table.num_rows

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, row: int) -> Key:
        return tuple(c[row].as_py() for c in self.columns)


Prefixes = set[Key] | SortedKeys


def touched(name: str, old: list[OldFile], prefixes: Prefixes) -> list[int]:
    """The files whose rows may begin with one of ``prefixes`` (or where such rows would be put), in order: the
    file before the first whose first key is above the prefix, and the file before and every file whose first key
    is the prefix."""
    width = len(PREFIXES[name])
    heads = [f.first[:width] for f in old]
    if isinstance(prefixes, SortedKeys):
        return _touched_sorted(heads, prefixes)
    out: set[int] = set()
    for p in prefixes:
        first = max(0, bisect_left(heads, p) - 1)
        last = max(first, bisect_right(heads, p) - 1)
        out.update(range(first, last + 1))
    return sorted(out)


def _touched_sorted(heads: list[Key], keys: SortedKeys) -> list[int]:
    """``touched`` of sorted ``keys``, found per run of equal file heads (a few bisections each), not per key."""
    out: set[int] = set()
    n, low, i = len(heads), 0, 0
    while i < n:
        j = i
        while j + 1 < n and heads[j + 1] == heads[i]:
            j += 1
        below = bisect_left(keys, heads[i], low, len(keys))
        if below > low:  # keys between the last run's head and this one's: in the file before this run
            out.add(max(0, i - 1))
        at = bisect_right(keys, heads[i], below, len(keys))
        if at > below:  # keys equal to this run's head: the file before it and the whole run
            out.update(range(max(0, i - 1), j + 1))
        low, i = at, j + 1
    if low < len(keys):  # keys above every head: in the last file
        out.add(n - 1)
    return sorted(out)


def spans(touched_files: list[int], n: int) -> list[tuple[int, int]]:
    """The touched files with ``NEIGHBOURS`` files either side, merged into (first, last) runs of files."""
    out: list[tuple[int, int]] = []
    for i in touched_files:
        a, b = max(0, i - NEIGHBOURS), min(n - 1, i + NEIGHBOURS)
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


@dataclass(frozen=True)
class Splice:
    """How one table is staged from the last release: its files, the scope's rows (sorted by ``ORDER``, in the
    table's schema) and which rows of the old files belong to the scope; ``replaced`` gathers the old files' rows
    of the scope as the splice reads them (``replaced_rows``)."""

    name: str
    old: list[OldFile]
    scoped: pa.Table
    prefixes: Prefixes
    inside: Callable[[pa.Table], pa.Array]
    replaced: dict[tuple[int, int], pa.Table] = field(default_factory=dict)  # by (first, last) file read


def replaced_rows(s: Splice) -> pa.Table | None:
    """The last release's rows of the scope, in file order, once ``splice_table`` has run: every one of them is
    in a file it read (they lie under the scope's prefixes, hence in the touched files). None when no file was
    read."""
    if not s.replaced:
        return None
    return pa.concat_tables([s.replaced[i] for i in sorted(s.replaced)])


class DamagedFile(Exception):
    """A file of the last release whose local copy no longer has its checksum."""


def _read(f: OldFile, columns: list[str] | None = None) -> pa.Table:
    """The rows of ``f`` (``columns`` of them), once its bytes are checked: rows read from a damaged copy would be
    spliced into new files, uploaded under checksums of their own."""
    data = f.path.read_bytes()
    if hashlib.sha256(data).hexdigest() != f.sha256:
        raise DamagedFile(f"{f.path.name} does not have the checksum the last release lists")
    return pq.read_table(pa.BufferReader(data), columns=columns)


def _span_rows(s: Splice, a: int, b: int) -> pa.Table:
    """Files ``a``..``b`` of the old table without their scope rows, with the new scope rows that fall among
    them, in order."""
    old = pa.concat_tables([_read(f) for f in s.old[a:b + 1]])
    inside = s.inside(old)
    s.replaced[(a, b)] = old.filter(inside)
    old = old.filter(pc.invert(inside))
    low = s.old[a].first if a > 0 else None
    high = s.old[b + 1].first if b + 1 < len(s.old) else None
    new = _rows_between(s.scoped, s.name, low, high)
    return _merged(s.name, [old, new], s.scoped.schema)


def _span_cuts(rows: pa.Table, column: str, width: tuple[float, float], file_bytes: int, *, first: bool,
               last: bool, inner: tuple[int, int]) -> list[int]:
    """The cuts in a span's rows that the whole table has: all of them at the table's ends, else those from the
    nearer neighbour's first row (``inner[0]``) to the last one's (``inner[1]``)."""
    starts, hashes = column_runs(rows.column(column).combine_chunks())
    found = cuts(starts, hashes, rows.num_rows, width, file_bytes)
    low = 0 if first else inner[0]
    high = rows.num_rows if last else inner[1]
    kept = [c for c in found if low <= c <= high and (c > 0 or first)]
    return [0, *kept] if not first else kept


def _far_linked(s: Splice, a: int, b: int, split_column: str, width: tuple[float, float], file_bytes: int,
                out: _Out) -> bool:
    """Write files ``a``..``b`` with the farther neighbours (``a`` unless it is the table's first file, ``b`` unless
    its last) left as they are; False, with nothing written, when that cannot be done.

    A farther neighbour holds no row of the scope and none falls among its rows, and its start stays a cut; only
    its split column is read, for the cuts of the files beside it, and the file is linked rather than read,
    merged and written again (the same bytes). The files in between are read, merged and written
    ``WINDOW_ROWS`` at a time (``_windows``): all of them, when the span is the whole table. False when the span
    is too short to have its farther neighbours, or when a new row would fall among their rows or their bounds
    would not stay cuts after all: the span is then read whole.
    """
    n = len(s.old)
    left, right = a > 0, b < n - 1
    if b - a < left + right:
        return False
    for i, far in ((a, left), (b, right)):
        high = s.old[i + 1].first if i + 1 < n else None
        if far and _rows_between(s.scoped, s.name, s.old[i].first, high).num_rows:
            return False
    mark = out.mark()
    if left:
        out.add(None, s.old[a])
    context = _read(s.old[a], [split_column]).column(0).combine_chunks() if left else None
    tail = _read(s.old[b], [split_column]).column(0).combine_chunks() if right else None
    if any(x is not None and len(x) != s.old[i].rows for x, i in ((context, a), (tail, b))):
        raise DamagedFile(f"a file of {s.name} holds other rows than the last release lists")
    if not _windows(s, a + left, b - right, _Cutter(split_column, width, file_bytes, context, tail), out):
        out.undo(mark)
        return False
    if right:
        out.add(None, s.old[b])
    return True


@dataclass
class _Cutter:
    """The cuts of a span's rows, fed a window of them at a time: ``context`` is the split column of the file
    before the rows not yet written (None at the table's start; it starts at a cut and is longer than half a
    file, so the cuts beside it are found as the whole table finds them), ``tail`` that of the farther right
    neighbour (None at the table's end), whose start must stay a cut."""

    column: str
    width: tuple[float, float]
    file_bytes: int
    context: pa.Array | None
    tail: pa.Array | None

    def cuts(self, rows: pa.Table, *, last: bool) -> tuple[list[int], int] | None:
        """(the cuts among ``rows``, starting with 0, that no later row can move; the row where the rows not
        settled yet start: ``len(rows)`` at the span's ``last`` window). None when the first row (or, at the
        last window, the tail's first) would not be a cut."""
        head = [] if self.context is None else [self.context]
        end = [self.tail] if last and self.tail is not None else []
        own = rows.column(self.column).combine_chunks()
        column = _one_array([c for part in [*head, own, *end] for c in _chunks(part)])
        low = len(column) - len(own) - sum(len(x) for x in end)
        high = low + len(own)
        starts, hashes = column_runs(column)
        found = cuts(starts, hashes, len(column), self.width, self.file_bytes)
        settled = high if last else settled_before(starts, len(column), self.width, self.file_bytes)
        if low not in found or (end and high not in found):
            return None
        return [c - low for c in found if low <= c < max(settled, low + 1)], max(settled, low) - low

    def written(self, rows: pa.Table) -> None:
        """``rows`` were written as one file: context for the next window's cuts."""
        self.context = rows.column(self.column).combine_chunks()


def _window_files(old: list[OldFile], a: int, b: int) -> list[tuple[int, int]]:
    """Files ``a``..``b`` in runs of about ``WINDOW_ROWS`` rows, at least one file each."""
    out, start, rows = [], a, 0
    for i in range(a, b + 1):
        rows += old[i].rows
        if rows >= WINDOW_ROWS or i == b:
            out.append((start, i))
            start, rows = i + 1, 0
    return out


def _chunks(column: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def _windows(s: Splice, a: int, b: int, cutter: _Cutter, out: _Out) -> bool:
    """Write files ``a``..``b`` of the old table, their scope rows replaced, as the whole table's files: files of
    about ``WINDOW_ROWS`` rows are read and merged at a time, the files whose cuts are settled written, and the rows
    after the last of them carried into the next window. False, with the windows' scope rows forgotten, when
    the rows' first row or the tail's start would not be cuts."""
    carry: pa.Table | None = None
    for start, stop in _window_files(s.old, a, b):
        rows = _span_rows(s, start, stop)
        if carry is not None:  # before every row of the window: merged for one sorted dictionary per column
            rows = _merged(s.name, [carry, rows], s.scoped.schema)
        found = cutter.cuts(rows, last=stop == b)
        if found is None:
            for key in [k for k in s.replaced if a <= k[0] and k[1] <= b]:
                del s.replaced[key]
            return False
        bounds, settled = found
        ends = [*bounds[1:], settled] if stop == b else bounds[1:]
        for begin, end in zip(bounds, ends, strict=False):
            piece = rows.slice(begin, end - begin)
            out.add(piece)
            cutter.written(piece)
        carry = rows.slice(bounds[-1]) if stop < b else None
        del rows
    return True


def _one_array(chunks: list[pa.Array]) -> pa.Array:
    """The chunks as one array of their values: dictionary chunks on one dictionary (their codes remapped, the
    values not copied out: decoding a span's split column of strings took most of a splice), else decoded. The
    cuts depend on the values alone (``parquet.column_runs`` gives a dictionary's runs the hashes of its values),
    and the parts' dictionaries differ."""
    kinds = {c.type for c in chunks}
    if len(kinds) == 1 and pa.types.is_dictionary(chunks[0].type):
        unified = pa.chunked_array(chunks, chunks[0].type).unify_dictionaries()
        return pa.DictionaryArray.from_arrays(pa.concat_arrays([c.indices for c in unified.chunks]),
                                              unified.chunks[0].dictionary)
    return pa.concat_arrays([c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in chunks])


class _Out:
    """The files a splice stages for a table, in order: rows written or an old file linked."""

    def __init__(self, name: str, folder: Path, write: FileWriter, link: Link) -> None:
        self.name, self.folder, self.write, self.link = name, folder, write, link
        self.parts: list[StagedFile] = []

    def add(self, table: pa.Table | None, old: OldFile | None = None) -> None:
        path = self.folder / f"part-{len(self.parts):05d}.parquet"
        self.parts.append(self.link(self.name, old, path) if old is not None else self.write(self.name, table, path))

    def mark(self) -> int:
        return len(self.parts)

    def undo(self, mark: int) -> None:
        """Forget the files staged since ``mark`` (a span then read whole writes them again)."""
        for part in self.parts[mark:]:
            part.path.unlink(missing_ok=True)
        del self.parts[mark:]


def _near_linked(s: Splice, span: tuple[int, int], hit: list[int], cutting: tuple[str, tuple[float, float], int],
                 out: _Out) -> bool:
    """Write the files of ``span`` (touched files ``hit`` and ``NEIGHBOURS`` either side) reading only the touched
    files and those between them: the nearer neighbours are linked as they are, only their split column read for
    the cuts beside them. False, with nothing written, when the touched files' first row or the right neighbour's
    would not stay a cut (``_far_linked``): the span is then staged with its nearer neighbours read.

    Where both stay cuts, so does every cut of the neighbours, and no new one falls inside them. A cut's key is
    the smallest within half a file either side, so a run within half a file of a cut is no cut: that holds the
    neighbours' runs whose places the changed rows weigh in; the rest of their runs are placed by rows that did
    not change. And, longer than half a file (two cuts are not nearer), they hold every run that places the
    touched files' rows and their two bounds.

    At a million stations a region's contests lie in one or two contest_results files of half a million rows:
    their nearer neighbours were twice the rows the scope changed, read, merged and written again as they were."""
    a, b = span
    inner = (max(a, hit[0] - 1), min(b, hit[-1] + 1))
    if inner == span:  # the touched files reach the table's ends: no neighbour to spare
        return False
    mark = out.mark()
    for old in s.old[a:inner[0]]:
        out.add(None, old)
    if not _far_linked(s, *inner, *cutting, out):
        out.undo(mark)
        return False
    for old in s.old[inner[1] + 1:b + 1]:
        out.add(None, old)
    return True


def splice_table(s: Splice, directory: Path, *, split_column: str, width: tuple[float, float], file_bytes: int,
                 write: FileWriter, link: Link) -> StagedFile:
    """Stage table ``s.name`` in ``directory``: ``write_table_files`` of the whole new table, byte for byte, with
    the files outside the scope's spans linked (``link``) rather than read."""
    if len(s.old) < MIN_FILES:
        rows = _span_rows(s, 0, len(s.old) - 1)
        return write_table_files(s.name, rows, directory, split_column=split_column,
                                 width=width, file_bytes=file_bytes, write=write)
    folder = directory / s.name
    folder.mkdir(parents=True, exist_ok=True)
    out = _Out(s.name, folder, write, link)
    done = 0
    hit = touched(s.name, s.old, s.prefixes)
    for a, b in spans(hit, len(s.old)):
        for old in s.old[done:a]:
            out.add(None, old)
        done = b + 1
        linked = _near_linked(s, (a, b), [i for i in hit if a <= i <= b], (split_column, width, file_bytes), out) \
            or _far_linked(s, a, b, split_column, width, file_bytes, out)
        if not linked:
            rows = _span_rows(s, a, b)  # every file of the span read (again, if _far_linked read the inner ones)
            # The nearer neighbours' first rows, in the span's rows: the far left file is unchanged; the right
            # one's first row is where the rows from the old last file start.
            bounds = _span_cuts(rows, split_column, width, file_bytes, first=a == 0, last=b == len(s.old) - 1,
                                inner=(s.old[a].rows, rows.num_rows - s.old[b].rows))
            for start, stop in zip(bounds, [*bounds[1:], rows.num_rows], strict=True):
                out.add(rows.slice(start, stop - start))
            del rows
        # A span's rows are written and let go of: the next span's allocate afresh, maybe in another thread's
        # heap, which would not reuse these pages (two splice threads held ~0.3 GB more at a million stations).
        give_back()
    for old in s.old[done:]:
        out.add(None, old)
    parts = out.parts
    return StagedFile(s.name, folder, sum(p.rows for p in parts), sum(p.bytes for p in parts),
                      tree_sha256([p.sha256 for p in parts]), tuple(parts))

