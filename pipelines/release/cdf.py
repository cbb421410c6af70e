"""NIST SP 1500-100 v2 JSON (``ElectionReport``) of one election, built from a release's contest tables.

What goes where (docs/contests.md, "Export"): every division becomes a ``ReportingUnit`` whose
``ComposingGpUnitIds`` are the divisions naming it as ``parent_id`` or in ``member_of``; each contest becomes a
Candidate/Party/BallotMeasure/RetentionContest with one ``BallotSelection`` per selection and ``VoteCounts`` per
station and division (``total`` and each vote method a tally reported); over/under votes and write-ins become
``OtherCounts``. A figure the tables hold as null is left out, never written as 0.

Ids are Ballotstream's own (division, party, candidate and contest ids are already unique and stable); objects
that have no id of their own get ``<owner id>#<role>``. Every list is sorted, so one release always gives the
same document (``generated_at`` is the release's time, passed in).

The document is written as JSON text directly, a column at a time (``cdf_json``): a million-station election has
hundreds of thousands of counts, which as Python objects took 15 s to build and 13 s to serialise. It is
compact (no indentation, keys sorted) and published gzip-compressed (``release_documents``), its Contest array in
blocks of contests, each a gzip member of its own that a publish with a cache builds only when its inputs changed
(``cdf_blocks``).

This module is the export's entry point: which tables at which detail level, the document's assembly and what the
release step publishes. Its parts are built by ``cdf_contests`` (with ``cdf_selections`` and ``cdf_counts``),
``cdf_people`` and ``cdf_units`` from one election's ``cdf_report.Report``; ``cdf_tables`` names what is read.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.fold.allocator import give_back
from pipelines.release import (
    cdf_blocks,
    cdf_contests,
    cdf_counts,
    cdf_frame,
    cdf_json,
    cdf_people,
    cdf_report,
    cdf_selections,
    cdf_tables,
    cdf_units,
    cdf_vocab,
)
from pipelines.release.blobs import Blob, parts_of
from pipelines.release.cdf_report import Report, column, dumps, text
from pipelines.release.cdf_tables import (
    CANDIDATES,
    COLUMNS,
    CONTESTS,
    DIVISIONS,
    ELECTIONS,
    PARTIES,
    PRECINCT_FORMAT,
    REQUIRED,
    RESULTS,
    STATION,
    STATION_TURNOUT,
    SUMMARY_FORMAT,
    TABLES,
    ExportTables,
    LazyTables,
)
from pipelines.release.parquet import StagedFile, read_staged

log = logging.getLogger(__name__)

FOLDER = "cdf"
FORMAT = "NIST SP 1500-100 v2 JSON ElectionReport"
MEDIA_TYPE = "application/gzip"
ISSUER = cdf_frame.ISSUER
# Polling-station counts go into the document up to this many station rows of contest_results. Beyond it the
# document holds divisions and contests only ("summary-contest"): the station counts are in the Parquet tables,
# and a document of every station × selection of a large election would be gigabytes.
STATION_LEVEL_MAX_ROWS = 250_000
STATION_KINDS = frozenset({"POLLING_STATION", "PRECINCT"})
GZIP_LEVEL = cdf_blocks.GZIP_LEVEL
# Read by the document's frame alone (``cdf_frame``), hence only when it is built.
FRAME_ONLY = frozenset({DIVISIONS, CANDIDATES, PARTIES})
# Every module the documents' bytes depend on (EXPORT_VERSION).
MODULES = (cdf_tables, cdf_report, cdf_counts, cdf_selections, cdf_contests, cdf_people, cdf_units, cdf_json,
           cdf_vocab, cdf_blocks, cdf_frame)


def document_key(election_id: str) -> str:
    """Where the election's document sits in a release folder."""
    return f"{FOLDER}/{election_id}.json.gz"


def _export_version() -> str | None:
    """The digest of the export's code (this module and ``MODULES``), or None without its source."""
    digest = hashlib.sha256()
    try:
        for module in (__file__, *(m.__file__ for m in MODULES)):
            digest.update(Path(module).read_bytes())
    except (OSError, TypeError):
        return None  # no source to tell versions apart: never carry a document over
    return digest.hexdigest()


EXPORT_VERSION = _export_version()


def at_reporting_level(tables: Mapping[str, pa.Table]) -> ExportTables:
    """Everything when the station rows fit (``STATION_LEVEL_MAX_ROWS``), else the tables without station rows,
    station figures and station units."""
    results = tables.get(RESULTS)
    if results is None or "level" not in results.column_names:
        return ExportTables(tables, PRECINCT_FORMAT)
    at_station = pc.equal(results["level"], STATION)
    if (pc.sum(at_station).as_py() or 0) <= STATION_LEVEL_MAX_ROWS:
        return ExportTables(tables, PRECINCT_FORMAT)
    out = dict(tables)
    out[RESULTS] = results.filter(pc.invert(at_station))
    out.pop(STATION_TURNOUT, None)
    if DIVISIONS in tables:
        out[DIVISIONS] = _without_stations(tables[DIVISIONS])
    return ExportTables(out, SUMMARY_FORMAT)


def export_inputs(files: Mapping[str, StagedFile]) -> str | None:
    """What a release's documents are built from, as one digest: the export's code and settings, and the sha256
    of each staged table it reads (``ExportTables.inputs``); None when the code cannot be told apart."""
    if EXPORT_VERSION is None:
        return None
    lines = [f"{EXPORT_VERSION} {STATION_LEVEL_MAX_ROWS} {GZIP_LEVEL}\n",
             *(f"{n} {files[n].sha256}\n" for n in TABLES if n in files)]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _read(files: Mapping[str, StagedFile], name: str, condition: pc.Expression | None = None) -> pa.Table:
    """A staged table's ``COLUMNS`` (those it has), and only the rows ``condition`` keeps."""
    present = set(pq.read_schema(files[name].paths()[0]).names)
    return read_staged(files[name], [c for c in COLUMNS[name] if c in present], condition)


def _station_rows(results: StagedFile, enough: int) -> int:
    """contest_results' station rows, counted in its ``level`` column alone (dictionary codes, not strings), a
    file at a time (a million stations' 13 million codes at once were 0.12 GB), until more than ``enough``: at a
    million stations the first of 27 files says the document is at summary level (all of them took 0.2 s)."""
    count = 0
    for path in results.paths():
        if count > enough:
            break
        for chunk in pq.read_table(path, columns=["level"])["level"].chunks:
            if not pa.types.is_dictionary(chunk.type):
                count += pc.sum(pc.equal(chunk, STATION)).as_py() or 0
                continue
            code = chunk.dictionary.index(STATION).as_py()
            count += 0 if code < 0 else pc.sum(pc.equal(chunk.indices, code)).as_py() or 0
    return count


def read_export_tables(files: Mapping[str, StagedFile], *, results: bool = True) -> ExportTables:
    """``at_reporting_level`` of a release's staged tables, reading only what the documents use: the columns of
    ``COLUMNS``, and for a large election no station rows at all (a million stations' contest_results are
    13 million rows; their count comes from the file's row count, not from reading them). Without ``results``,
    contest_results is not read (its blocks' rows are read as ``cdf_blocks`` needs them). The tables only the
    document's frame reads are read when it is built (``LazyTables``)."""
    tables: dict[str, pa.Table | Callable[[], pa.Table]] = {
        n: partial(_read, files, n) if n in FRAME_ONLY else _read(files, n)
        for n in TABLES if n in files and n not in (RESULTS, STATION_TURNOUT, DIVISIONS)}
    staged = files.get(RESULTS)
    if staged is not None and "level" in pq.read_schema(staged.paths()[0]).names:
        above = _read(files, RESULTS, pc.field("level") != STATION) if results else None
        stations = (staged.rows - above.num_rows if above is not None
                    else _station_rows(staged, STATION_LEVEL_MAX_ROWS))
        if stations > STATION_LEVEL_MAX_ROWS:
            if above is not None:
                tables[RESULTS] = above
            if DIVISIONS in files:
                tables[DIVISIONS] = partial(_divisions_without_stations, files[DIVISIONS])
            return ExportTables(LazyTables(_in_order(tables)), SUMMARY_FORMAT, export_inputs(files))
    tables.update({n: partial(_read, files, n) if n in FRAME_ONLY else _read(files, n)
                   for n in (DIVISIONS, RESULTS, STATION_TURNOUT) if n in files and (results or n != RESULTS)})
    return ExportTables(LazyTables(_in_order(tables)), PRECINCT_FORMAT, export_inputs(files))


def _read_for_build(files: Mapping[str, StagedFile], *, results: bool) -> ExportTables:
    export = read_export_tables(files, results=results)
    give_back()  # what the read let go of (a million polling stations' rows): the build's peak is still to come
    return export


def _in_order(tables: dict[str, Any]) -> dict[str, Any]:
    return {n: tables[n] for n in TABLES if n in tables}


def _divisions_without_stations(divisions: StagedFile) -> pa.Table:
    """The divisions but the polling stations, read a file at a time and filtered here (a filtered read of a
    million string rows took three times longer; read whole, the documents' build held them all at its peak)."""
    present = set(pq.read_schema(divisions.paths()[0]).names)
    read = [c for c in COLUMNS[DIVISIONS] if c in present]
    return pa.concat_tables([_without_stations(pq.read_table(path, columns=read)) for path in divisions.paths()])


def _without_stations(divisions: pa.Table) -> pa.Table:
    return divisions.filter(pc.invert(pc.is_in(divisions["kind"], pa.array(sorted(STATION_KINDS)))))


def _status(report: Report) -> str:
    """``unofficial-complete`` when every contest's stations all reported; the figures are never certified."""
    if not report.contests:
        return "unofficial-partial"  # nothing says the results are complete
    for contest in report.contests:
        s = report.summary.get(contest["contest_id"]) or {}
        if s.get("stations_expected") is None or s.get("stations_reporting") != s["stations_expected"]:
            return "unofficial-partial"
    return "unofficial-complete"


def _report_members(export: ExportTables, election_id: str, generated_at: datetime,
                    cache: cdf_blocks.Cache | None = None) -> list[bytes]:
    """The ElectionReport of ``election_id`` as gzip members of its UTF-8 JSON: the frame's head (``cdf_frame``),
    one member per block of contests (``cdf_blocks``), the election's last members and the release's time, the
    frame's body, and the status (the frame and blocks from ``cache`` where it holds them)."""
    elections = export.tables[ELECTIONS]
    election = next((r for r in elections.select([c for c in COLUMNS[ELECTIONS] if c in elections.column_names])
                     .to_pylist() if r["election_id"] == election_id), None)
    if election is None:
        raise KeyError(election_id)
    # contest_results are read a block at a time, not by the report of the whole election.
    tables = export.tables
    tables = tables.without(RESULTS) if isinstance(tables, LazyTables) else {n: t for n, t in tables.items()
                                                                             if n != RESULTS}
    report = Report(ExportTables(tables, export.format), election)
    if export.format == SUMMARY_FORMAT:
        report.notes.append(f"Polling-station counts are left out (more than {STATION_LEVEL_MAX_ROWS:,} station "
                            "rows); they are in the release's contest_results table.")
    blocks = cdf_blocks.contest_blocks(report, export.tables.get(RESULTS), cache)
    frame = cdf_frame.frame(report, blocks, cache)
    etype, other = cdf_vocab.election_type(election.get("kind"))
    date = dumps(election["date"].isoformat())
    generated = generated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # The release's time and status: members of their own around the frame's body, which is kept (``cdf_frame``).
    election_end = cdf_blocks.member([
        b"]," if blocks else b"",
        f'"ElectionScopeId":{dumps(report.scope)},"EndDate":{date},"Name":{dumps(text(election["name"]))},'
        f'{f"{chr(34)}OtherType{chr(34)}:{dumps(other)}," if other else ""}"StartDate":{date},'
        f'"Type":{dumps(etype)}}}],"Format":{dumps(export.format)},"GeneratedDate":{dumps(generated)},'.encode()])
    end = cdf_blocks.member([f'"SequenceEnd":1,"SequenceStart":1,"Status":{dumps(_status(report))},'
                             f'"VendorApplicationId":{dumps(ISSUER)}}}'.encode()])
    return [frame.head, *(b.member for b in blocks), election_end, frame.body, end]


def _export(tables: Mapping[str, pa.Table] | ExportTables) -> ExportTables:
    return tables if isinstance(tables, ExportTables) else at_reporting_level(tables)


def election_report(tables: Mapping[str, pa.Table] | ExportTables, election_id: str, *, generated_at: datetime
                    ) -> bytes:
    """The ElectionReport of ``election_id`` from a release's tables (by name; see ``TABLES``) as UTF-8 JSON:
    compact, keys sorted, as ``json.dumps(..., ensure_ascii=False, separators=(",", ":"), sort_keys=True)``
    writes it.

    Raises:
        KeyError: ``election_id`` is not in the ``elections`` table.
    """
    return gzip.decompress(b"".join(_report_members(_export(tables), election_id, generated_at)))


def _election_ids(tables: Collection[str], elections: pa.Table | None) -> list[str] | None:
    """The elections to export, or None (logged) when the release lacks the contest tables (folded before the
    contest model): there is then nothing a contest-based document could truthfully hold."""
    missing = [n for n in REQUIRED if n not in tables]
    if missing or elections is None:
        log.warning("no NIST SP 1500-100 export: the release has no %s table", ", ".join(missing))
        return None
    return sorted(e for e in set(column(elections, "election_id").to_pylist()) if e is not None)


def cdf_documents(tables: Mapping[str, pa.Table] | ExportTables, *, generated_at: datetime) -> dict[str, bytes]:
    """``{cdf/<election_id>.json.gz: ElectionReport as UTF-8 JSON}`` for every election in ``elections`` (empty
    without the contest tables)."""
    export = _export(tables)
    return {document_key(e): election_report(export, e, generated_at=generated_at)
            for e in _election_ids(export.tables, export.tables.get(ELECTIONS)) or []}


def compress(pieces: Iterable[cdf_blocks.Piece]) -> bytes:
    """The pieces one after another as one gzip member, without a file name or time (``cdf_blocks.member``)."""
    return cdf_blocks.member(pieces)


def release_documents(tables: Mapping[str, pa.Table] | Mapping[str, StagedFile] | ExportTables, *,
                      generated_at: datetime, previous: Mapping[str, Any] | None = None,
                      built: Mapping[str, Blob] | None = None, cache: Path | None = None
                      ) -> tuple[dict[str, Blob], dict[str, dict[str, Any]]]:
    """What the release step writes beside ``datapackage.json``, and the manifest's ``documents`` entries.

    A document is published as its gzip members (``parts``, content-addressed in the bucket: an update uploads
    only the members it changed); joined in order, they are the ``.json.gz``. A document whose inputs
    (``export_inputs``) equal those of the previous release's is that release's document: its parts are listed
    again (with its ``GeneratedDate``), neither built nor uploaded, and the tables are not read.

    Args:
        tables: the release's staged tables (``Staged.files``), or tables by name (those of ``TABLES`` it has),
            or ``read_export_tables``'s.
        generated_at: the release's time (the documents' ``GeneratedDate``).
        previous: the previous release's manifest, if any.
        built: documents (by key) this function already made from these very tables for this ``generated_at``,
            beside the gate (``cdf_ahead.Build.load`` vouches for that): used as they are, their tables not read.
        cache: a local folder of the documents' blocks of contests (``cdf_blocks``), for staged tables: the
            blocks whose inputs are those of a block there are not built again, nor their rows read.

    Returns:
        (the documents to upload by key, gzip-compressed, not those carried over; ``{key: {path, format,
        media_type, election_id, inputs, bytes, sha256, parts}}``, ``bytes`` and ``sha256`` those of the whole
        document, ``parts`` each member's ``{sha256, bytes}`` in order); both empty without contest tables.
    """
    export: ExportTables | None = None
    if not isinstance(tables, ExportTables) and tables and all(isinstance(t, StagedFile) for t in tables.values()):
        files: Mapping[str, StagedFile] = tables  # type: ignore[assignment]
        inputs, names = export_inputs(files), set(files)
        elections = _read(files, ELECTIONS) if ELECTIONS in files else None
        cache = cache if EXPORT_VERSION is not None and RESULTS in files else None  # else nothing keys a block
    else:
        export = _export(tables)  # type: ignore[arg-type]
        inputs, names, elections = export.inputs, set(export.tables), export.tables.get(ELECTIONS)
        cache = None  # tables in memory: nothing says where contest_results' rows lie
    earlier = (previous or {}).get("documents") or {}
    documents: dict[str, Blob] = {}
    entries: dict[str, dict[str, Any]] = {}
    for election_id in _election_ids(names, elections) or []:
        key = document_key(election_id)
        entry = {"path": key, "format": FORMAT, "media_type": MEDIA_TYPE,
                 "election_id": election_id, "inputs": inputs}
        same = earlier.get(key)
        if inputs is not None and previous is not None and same and same.get("inputs") == inputs and \
                same.get("parts"):
            entry.update(bytes=same["bytes"], sha256=same["sha256"], parts=same["parts"])
        else:
            doc = (built or {}).get(key)
            if doc is None:
                export = export or _read_for_build(files, results=cache is None)
                blocks = _blocks_cache(files, export, election_id, cache) if cache is not None else None
                members = _report_members(export, election_id, generated_at, blocks)
                doc = Blob(b"".join(members), MEDIA_TYPE, tuple(len(m) for m in members))
            documents[key] = doc
            entry.update(bytes=len(doc.body), sha256=hashlib.sha256(doc.body).hexdigest(), parts=parts_of(doc))
        entries[key] = entry
    if cache is not None:
        cdf_blocks.prune(cache)
    return documents, entries


def _blocks_cache(files: Mapping[str, StagedFile], export: ExportTables, election_id: str, folder: Path
                  ) -> cdf_blocks.Cache:
    """Where the blocks of ``election_id``'s document are kept, and how its contest_results rows are read (those
    ``_read`` would read)."""
    present = set(pq.read_schema(files[RESULTS].paths()[0]).names)
    condition = pc.field("level") != STATION if export.format == SUMMARY_FORMAT else None
    base = (f"{EXPORT_VERSION} {STATION_LEVEL_MAX_ROWS} {GZIP_LEVEL} {cdf_blocks.BLOCK_CONTESTS} {export.format} "
            f"{election_id}")
    # What the frame reads: station turnout only where the document holds station figures (new tallies change it).
    read = [n for n in (ELECTIONS, PARTIES, CANDIDATES, DIVISIONS, CONTESTS, STATION_TURNOUT)
            if n != STATION_TURNOUT or export.format == PRECINCT_FORMAT]
    tables = " ".join(f"{n}:{files[n].sha256 if n in files else None}" for n in read)
    return cdf_blocks.Cache(folder, hashlib.sha256(base.encode()).hexdigest(),
                            cdf_blocks.Staged(files[RESULTS], [c for c in COLUMNS[RESULTS] if c in present], condition),
                            tables)
