"""The NIST document's Contest array in blocks (``pipelines.release.cdf_blocks``): cut anywhere, the document's JSON
is the one of a single block; built from a cache of blocks, its bytes are those of a build without one, and only
the blocks whose inputs changed are built again."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.fold.tables import file_layout
from pipelines.release import cdf, cdf_blocks, cdf_frame
from pipelines.release.cdf_tables import STATION
from pipelines.release.parquet import StagedFile, write_table_files
from tests.support import contests as fx

AT = datetime(2020, 11, 5, 12, 30, tzinfo=UTC)
KEY = f"cdf/{fx.ELECTION}.json.gz"
CONTESTS = "contests", "contest_selections", "contest_results", "contest_summary", "station_turnout"


def _cloned(copies: int, dropped: set[int]) -> dict[str, pa.Table]:
    """The fixture's election with its contests repeated ``copies`` times under other ids (each copy's labels
    its own, so which selection names a person first decides their ballot name), leaving out the contests at
    positions ``dropped``."""
    tables = fx.contest_tables()
    out = dict(tables)
    ids = sorted({c: None for k in range(copies) for c in
                  (f"{cid}.{k}" for cid in tables["contests"]["contest_id"].to_pylist())})
    keep = [c for i, c in enumerate(ids) if i not in dropped]
    for name in CONTESTS:
        rows = tables[name].to_pylist()
        copied = []
        for k in range(copies):
            for r in rows:
                r = {**r, "contest_id": f"{r['contest_id']}.{k}"}
                if r.get("label"):
                    r["label"] = f"{r['label']} ({k})"
                copied.append(r)
        copied = [r for r in copied if r["contest_id"] in keep]
        out[name] = pa.Table.from_pylist(copied, schema=tables[name].schema)
    # Persons not registered are named by the first selection naming them: that ranks selections across blocks.
    candidates = tables["candidates"]
    out["candidates"] = candidates.filter(pc.invert(pc.is_in(
        candidates["candidate_id"], value_set=pa.array(["candidate:joseph-biden", "candidate:kamala-harris"]))))
    return out


def _document(tables: dict[str, pa.Table], block_contests: int) -> bytes:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cdf_blocks, "BLOCK_CONTESTS", block_contests)
        return cdf.election_report(tables, fx.ELECTION, generated_at=AT)


@settings(max_examples=40, deadline=None)
@given(copies=st.integers(1, 4), dropped=st.sets(st.integers(0, 19), max_size=6), block=st.integers(1, 4),
       summary=st.booleans())
def test_cut_anywhere_the_document_is_that_of_one_block(copies, dropped, block, summary) -> None:
    tables = _cloned(copies, dropped)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cdf, "STATION_LEVEL_MAX_ROWS", 0 if summary else cdf.STATION_LEVEL_MAX_ROWS)
        whole = _document(tables, 10**9)
        assert _document(tables, block) == whole
    contests = tables["contests"].num_rows
    assert whole.count(b'"@type":"ElectionResults.') and (contests == 0) == (b'"Contest":[' not in whole)


def test_the_blocks_are_the_members_between_the_head_and_the_rest() -> None:
    tables = _cloned(3, set())
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cdf_blocks, "BLOCK_CONTESTS", 1)  # a block per contest
        body = cdf.release_documents(tables, generated_at=AT)[0][KEY].body
    assert body.count(b"\x1f\x8b\x08") >= tables["contests"].num_rows + 2
    assert gzip.decompress(body) == _document(tables, 10**9)


def _staged(tables: dict[str, pa.Table], folder: Path) -> dict[str, StagedFile]:
    return {n: write_table_files(n, t, folder, **file_layout(n, 100)) for n, t in tables.items()}


class Counted:
    """Counts the blocks built, the contest_results rows read for them and the frames built (``cdf_frame``)."""

    def __init__(self, m: pytest.MonkeyPatch) -> None:
        self.built, self.read, self.frames, self.parsed = 0, 0, 0, 0
        self.tables: set[str] = set()  # the export's tables read
        build, read, frame, parse = cdf_blocks.build, cdf_blocks.Staged.read, cdf_frame.build, cdf_blocks.Found.parse
        read_table, divisions = cdf._read, cdf._divisions_without_stations

        def counted_table(files: dict[str, StagedFile], name: str, *args: Any) -> pa.Table:
            self.tables.add(name)
            return read_table(files, name, *args)

        def counted_divisions(staged: StagedFile) -> pa.Table:
            self.tables.add(staged.table)
            return divisions(staged)

        def counted_frame(*args: Any) -> cdf_frame.Frame:
            self.frames += 1
            return frame(*args)

        def counted_build(*args: Any) -> cdf_blocks.Block:
            self.built += 1
            return build(*args)

        def counted_read(staged: cdf_blocks.Staged, ids: list[str], files: set[int]) -> pa.Table | None:
            out = read(staged, ids, files)
            self.read += 0 if out is None else out.num_rows
            return out

        def counted_parse(text: bytes) -> cdf_blocks.Found:
            self.parsed += 1
            return parse(text)

        m.setattr(cdf_blocks, "build", counted_build)
        m.setattr(cdf_blocks.Found, "parse", staticmethod(counted_parse))
        m.setattr(cdf_frame, "build", counted_frame)
        m.setattr(cdf, "_read", counted_table)
        m.setattr(cdf, "_divisions_without_stations", counted_divisions)
        m.setattr(cdf_blocks.Staged, "read", counted_read)


def _published(files: dict[str, StagedFile], cache: Path | None) -> bytes:
    return cdf.release_documents(files, generated_at=AT, cache=cache)[0][KEY].body


@pytest.mark.parametrize("summary", [False, True])
def test_blocks_from_the_cache_give_the_bytes_of_a_build_without_it(tmp_path, summary) -> None:
    tables = _cloned(4, set())
    cache = tmp_path / "blocks"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cdf_blocks, "BLOCK_CONTESTS", 2)
        m.setattr(cdf, "STATION_LEVEL_MAX_ROWS", 0 if summary else cdf.STATION_LEVEL_MAX_ROWS)
        files = _staged(tables, tmp_path / "first")
        assert len(files["contest_results"].parts) > 4
        fresh = _published(files, None)
        counted = Counted(m)
        assert _published(files, cache) == fresh
        blocks = counted.built
        assert blocks > 3 and len(list(cache.glob("*.block"))) == blocks and counted.frames == 1
        assert {"divisions", "candidates", "parties"} <= counted.tables
        counted.tables.clear()
        assert _published(files, cache) == fresh and counted.built == blocks and counted.read > 0
        assert counted.frames == 1  # the frame too was found in the cache...
        assert counted.parsed == 0  # ...so what the cached blocks' contests found was not even parsed...
        assert not {"divisions", "candidates", "parties"} & counted.tables  # ...and the tables only it reads not read

        # One contest's counts change: its block (and any sharing a contest_results file with it) is built again,
        # from those files' rows alone.
        counted.built = counted.read = 0
        changed = dict(tables)
        results = tables["contest_results"]
        one = pc.equal(results["contest_id"], f"{fx.QUESTION}.2")
        votes = pc.if_else(one, pc.add(results["votes"], 1), results["votes"])
        changed["contest_results"] = results.set_column(results.column_names.index("votes"), "votes", votes)
        files = _staged(changed, tmp_path / "second")
        again = _published(files, cache)
        assert 1 <= counted.built < blocks and 0 < counted.read < results.num_rows
        assert counted.frames == 1  # counts are not in the frame
        assert again == _published(files, None) != fresh

        # A selection's label changes: its contest's block is built again.
        counted.built = 0
        selections = tables["contest_selections"]
        labels = pc.if_else(pc.equal(selections["contest_id"], f"{fx.QUESTION}.1"),
                            pc.binary_join_element_wise(selections["label"], "!", ""), selections["label"])
        changed["contest_selections"] = selections.set_column(selections.column_names.index("label"), "label",
                                                              labels.cast(selections.schema.field("label").type))
        relabelled = _staged(changed, tmp_path / "third")
        assert _published(relabelled, cache) == _published(relabelled, None) != again and counted.built >= 1

        # A person no candidate row registers takes their ballot name from the first selection naming them: a
        # change to that label is found by a block, and the frame (their Candidate) is built again.
        counted.frames = 0
        biden = pc.equal(selections["selection_id"], "candidate:joseph-biden")
        renamed = pc.if_else(biden, pc.binary_join_element_wise(selections["label"], "Jr.", " "), selections["label"])
        changed["contest_selections"] = selections.set_column(selections.column_names.index("label"), "label",
                                                              renamed.cast(selections.schema.field("label").type))
        renamed_files = _staged(changed, tmp_path / "fourth")
        document = _published(renamed_files, cache)
        assert counted.frames == 1
        assert document == _published(renamed_files, None) and b"Joseph R. Biden (0) Jr." in gzip.decompress(document)

        # A party's name changes: only the frame is built again.
        counted.built = counted.frames = counted.parsed = 0
        parties = tables["parties"]
        changed["parties"] = parties.set_column(parties.column_names.index("name"), "name",
                                                pc.utf8_upper(parties["name"]))
        party_files = _staged(changed, tmp_path / "fifth")
        published = _published(party_files, cache)
        assert counted.built == 0 and counted.frames == 1 and counted.parsed == blocks  # the frame needs them all
        assert published == _published(party_files, None) != document

        # A block or frame file cut short is built again, not read.
        for damaged in (sorted(cache.glob("*.block"))[0], *cache.glob("*.frame")):
            damaged.write_bytes(damaged.read_bytes()[:-5])
        counted.frames = 0
        assert _published(files, cache) == again and counted.frames == 1


def test_a_block_whose_findings_changed_in_the_cache_is_built_again(tmp_path) -> None:
    # A cached block's findings are parsed only when the frame is built: they are checked as the block is read.
    cache = tmp_path / "blocks"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cdf_blocks, "BLOCK_CONTESTS", 2)
        files = _staged(_cloned(2, set()), tmp_path / "staged")
        fresh = _published(files, cache)
        for block in cache.glob("*.block"):
            data = block.read_bytes()
            at = 8 + int.from_bytes(data[:8], "big") + 2  # in the findings' JSON, after the header
            block.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])
        counted = Counted(m)
        assert _published(files, cache) == fresh and counted.built == len(list(cache.glob("*.block"))) > 1


def test_blocks_unused_for_an_hour_are_pruned(tmp_path) -> None:
    import os

    (tmp_path / "old.block").write_bytes(b"x")
    (tmp_path / "young.block").write_bytes(b"x")
    os.utime(tmp_path / "old.block", (0, 0))
    assert cdf_blocks.prune(tmp_path) == 1 and [p.name for p in tmp_path.iterdir()] == ["young.block"]


def test_a_cache_is_not_used_where_nothing_can_key_its_blocks(tmp_path, monkeypatch) -> None:
    tables = _cloned(2, set())
    fresh = cdf.release_documents(tables, generated_at=AT)[0][KEY].body
    # Tables in memory: nothing says which files hold a block's rows.
    assert cdf.release_documents(tables, generated_at=AT, cache=tmp_path)[0][KEY].body == fresh
    # No digest of the export's code: blocks of another version of it could be taken for this one's.
    files = _staged(tables, tmp_path / "staged")
    monkeypatch.setattr(cdf, "EXPORT_VERSION", None)
    assert _published(files, tmp_path / "blocks") == fresh and not (tmp_path / "blocks").exists()


def test_station_rows_are_counted_until_they_decide_the_documents_level(tmp_path, monkeypatch) -> None:
    results = _staged(_cloned(4, set()), tmp_path)["contest_results"]
    total = sum(pc.sum(pc.equal(pq.read_table(p, columns=["level"])["level"].cast(pa.string()), STATION)).as_py()
                for p in results.paths())
    read, read_table = [], pq.read_table
    monkeypatch.setattr(pq, "read_table", lambda path, **kw: read.append(path) or read_table(path, **kw))
    assert cdf._station_rows(results, total) == total and len(read) == len(results.paths()) > 2
    read.clear()
    # The first file with a station row shows there are more than none: the files after it are not read.
    counted = cdf._station_rows(results, 0)
    assert 0 < counted < total and len(read) < len(results.paths())
