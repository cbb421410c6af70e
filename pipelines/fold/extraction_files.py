"""An extraction (``pipelines.fold.extract.Extracted``) as a folder of Arrow IPC files, and back.

Two readers need this: the parallel read hands each worker's extraction to the parent this way, and the
incremental publish keeps the extraction of every offset range it has read as a checkpoint segment
(``pipelines.release.checkpoint``). Merging the loaded parts (``extract.merge``) and folding them gives the
tables of one pass over all their records, because the fold does not depend on record order.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from pipelines.contract import schemas
from pipelines.fold.extract import CONTENT_SCHEMAS, ENVELOPE_SCHEMA, VOTES_SCHEMA, Extracted, Votes

# Bump when ``extract`` changes what it writes for the same record without its Arrow schemas changing (a field
# read differently, a default): saved extractions of the old logic must then not be merged with new ones.
EXTRACT_LOGIC_VERSION = 1


def extraction_version() -> str:
    """What a saved extraction depends on: the extraction logic, its Arrow schemas, and the Avro reader schemas
    records were decoded with. Two extractions may only be merged when their versions are equal.

    The fold itself is not part of it: every publish folds the merged extraction afresh, so a changed fold
    reads old checkpoints correctly.
    """
    digest = hashlib.sha256(f"extract-logic:{EXTRACT_LOGIC_VERSION}\n".encode())
    digest.update(str(ENVELOPE_SCHEMA).encode())
    for name, schema in sorted(CONTENT_SCHEMAS.items()):
        digest.update(f"\n{name}\n{schema}".encode())
    digest.update(f"\n{VOTES_SCHEMA}".encode())
    # The schema text, not its canonical form: a reader's defaults decide what an older record decodes to.
    for record_type in schemas.record_types():
        digest.update(f"\n{record_type}:{schemas.schema_json(record_type)}".encode())
    return digest.hexdigest()[:16]


def _tables(extracted: Extracted) -> dict[str, pa.Table]:
    votes, candidates = extracted.votes.to_tables()
    return {"envelope": extracted.envelope, "mentions": extracted.mentions, "votes": votes,
            "candidates": candidates, **{f"content.{t}": table for t, table in extracted.content.items()}}


def save_extraction(extracted: Extracted, directory: Path, *, compression: str | None = None) -> dict[str, Path]:
    """Write ``extracted`` as ``directory/<part>.arrow`` files (``directory`` must not exist); returns them by part.

    Uncompressed files can be memory-mapped by the reader; ``compression="zstd"`` for files that travel.
    """
    directory.mkdir(parents=True)
    written = {}
    for name, table in _tables(extracted).items():
        written[name] = directory / f"{name}.arrow"
        save_part(table, written[name], compression=compression)
    return written


# A part is written in record batches of about this many bytes, whatever chunks its table came in (a merged
# extraction comes in thousands: one per read and per segment). Within a batch each column is one run of bytes;
# in a file of small batches every column is strewn over all of it, and a memory-mapped reader of one column
# maps in the pages, or the kernel's page cache folios of up to 2 MB, around each piece: reading one envelope
# column of a million stations' copy mapped in all of its 700 MB.
BATCH_BYTES = 64 << 20


def save_part(table: pa.Table, path: Path, *, compression: str | None = None) -> None:
    """One file of ``save_extraction``, in batches of about ``BATCH_BYTES``."""
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=options) as out:
        for batch in _batches(table):
            out.write_batch(batch)


def _batches(table: pa.Table) -> Iterator[pa.RecordBatch]:
    """``table``'s rows in order, as batches of about ``BATCH_BYTES`` (one batch of a group of its chunks at a
    time is copied)."""
    group: list[pa.RecordBatch] = []
    size = 0
    for batch in table.to_batches():
        group.append(batch)
        size += batch.nbytes
        if size >= BATCH_BYTES:
            yield _one_batch(group, table.schema)
            group, size = [], 0
    if group:
        yield _one_batch(group, table.schema)


def _one_batch(group: list[pa.RecordBatch], schema: pa.Schema) -> pa.RecordBatch:
    if len(group) == 1:
        return group[0]
    columns = [pa.concat_arrays([b.column(i) for b in group]) for i in range(len(schema))]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def load_extraction(directory: Path, check: Callable[[str, mmap.mmap | bytes], None] | None = None) -> Extracted:
    """The inverse of ``save_extraction`` (files are memory-mapped: uncompressed ones are not copied).

    ``check`` is given each part's name and mapped bytes (an empty file's: ``b""``) before they are read, and may
    raise to refuse them.
    """
    def read(name: str) -> pa.Table:
        path = directory / f"{name}.arrow"
        if check is None:
            return pa.ipc.open_file(pa.memory_map(str(path))).read_all()
        with path.open("rb") as file:
            data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(file.fileno()).st_size \
                else b""
        check(name, data)
        return pa.ipc.open_file(pa.py_buffer(data)).read_all()

    content = {p.stem.split(".", 1)[1]: read(p.stem) for p in sorted(directory.glob("content.*.arrow"))}
    return Extracted(envelope=read("envelope"), content=content, mentions=read("mentions"),
                     votes=Votes.from_tables(read("votes"), read("candidates")))
