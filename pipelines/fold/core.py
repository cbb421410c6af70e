"""``fold``: a complete snapshot of the event log in, the current tables out."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa

from pipelines.contract import vocabulary as v
from pipelines.fold import tables as t
from pipelines.fold.allocator import use_fold_allocator
from pipelines.fold.build import corrections_table, events_table, noncurrent_events_table, reference_tables
from pipelines.fold.extract import Extracted, Votes, extract
from pipelines.fold.observations import news, observations, observations_by_division
from pipelines.fold.results import result_tables
from pipelines.fold.sliced import SlicedTable
from pipelines.fold.summary import WholeTurnout, national_summary, station_figures, table_station_figures
from pipelines.fold.versions import resolve
from pipelines.fold.withheld import exclude, with_withheld_counts
from pipelines.kafka.log_record import LogRecord

DATASET_METADATA_KEY = b"ballotstream.dataset"


def fold(records: Iterable[LogRecord], dataset: str | None = None) -> dict[str, pa.Table]:
    """Fold a complete snapshot of the log into the current tables.

    The result depends only on the set of records, not their order: duplicates count once, corrections
    replace what they supersede, retractions remove, and the latest version of each key wins (see
    ``pipelines.fold.versions``). Each table follows ``pipelines.fold.tables.SCHEMAS`` and is sorted by
    its key, so two folds of one snapshot write byte-identical Parquet.

    Args:
        records: every decoded record of the event topics, in any order; read once (a generator is fine).
        dataset: release name recorded in each table's schema metadata (``ballotstream.dataset``).

    Returns:
        The tables named in ``TABLE_NAMES``, in that order.

    Raises:
        SerializationError: a record lacks an envelope field.
    """
    return fold_extracted(extract_all(records), dataset)


def extract_all(records: Iterable[LogRecord]) -> Extracted:
    """``extract`` with the cyclic garbage collector paused for the pass."""
    # The pass allocates millions of short-lived tuples and creates no reference cycles; with the cyclic
    # collector on, each generation-2 sweep walks every live decoded record again (~30% of the pass).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return extract(records)
    finally:
        if collecting:
            gc.enable()


def fold_extracted(ex: Extracted, dataset: str | None = None, withhold: pa.Table | None = None
                   ) -> dict[str, pa.Table]:
    """The second half of ``fold``: resolve versions and build the tables from an extraction.

    Reading may be split across processes (``pipelines.fold.read``); their extractions are merged
    (``pipelines.fold.extract.merge``) and folded here.

    Args:
        ex: the extraction (its vote buffers are released on the way).
        dataset: release name recorded in each table's schema metadata.
        withhold: tallies to leave out of every result table, one row per (tally, rule)
            (``pipelines.fold.withheld.REQUEST_SCHEMA``); they become the ``withheld`` table.

    Returns:
        The tables named in ``TABLE_NAMES``, in that order.
    """
    out = {name: table.table() if isinstance(table, SlicedTable) else table
           for name, table in fold_tables(ex, dataset, withhold)}
    return {name: out[name] for name in t.TABLE_NAMES}


# The history tables, built last: full copies of the envelope (events the last of all: the largest).
HISTORY_TABLES = {t.CORRECTIONS: corrections_table, t.NONCURRENT_EVENTS: noncurrent_events_table,
                  t.EVENTS: events_table}


def fold_tables(ex: Extracted, dataset: str | None = None, withhold: pa.Table | None = None, *,
                whole_turnout: Callable[[pa.Table], WholeTurnout] | None = None
                ) -> Iterator[tuple[str, pa.Table | SlicedTable]]:
    """``fold_extracted``'s tables as (name, table) pairs, each as soon as it is built, then neither touched nor
    held; contest_results as a ``SlicedTable``, assembled as its slices are read. A consumer that writes each table
    and lets it go (the publish's write stage) holds less at once, and writes while the rest is folded. Arrow
    allocates from the C library's allocator from here on (``allocator.use_fold_allocator``).

    ``whole_turnout``: for a fold of a scope (``pipelines.fold.scope``), called with the scope's station_turnout
    as soon as it is built; returns station_turnout of the whole snapshot a part at a time (at least
    ``summary.SUMMARY_TURNOUT_COLUMNS``) for national_summary, which sums over every station: the caller may
    build it meanwhile.
    """
    use_fold_allocator()
    # A merged or memory-mapped extraction comes in many chunks: Arrow takes strings from a chunked column ~25x
    # slower than from one array, and every table takes its trace (event_id, topic) from the envelope.
    for name in ("event_id", "topic"):
        at = ex.envelope.schema.get_field_index(name)
        ex.envelope = ex.envelope.set_column(at, name, ex.envelope[name].combine_chunks())
    named = _metadata(dataset)
    res = resolve(ex.envelope, ex.content[v.RETRACTION])
    reference = reference_tables(ex, res)
    # contests gains each election's default contest with the result tables: every other one is final now.
    yield from ((name, named(table)) for name, table in reference.items() if name != t.CONTESTS)
    results_res, withheld = exclude(ex, res, withhold)
    yield t.WITHHELD, named(withheld)
    later: dict[str, pa.Table] = {}  # what national_summary reads of the result tables
    whole, stations = None, {}
    # Divisions apart: let go of once result_tables has the stations' composition (a million rows: 0.35 GB).
    for name, table in result_tables(ex, results_res, reference, reference.pop(t.DIVISIONS)):
        if name == t.CONTEST_SUMMARY:
            table = with_withheld_counts(table, withheld)
        table = named(table)
        if name == t.STATION_TURNOUT and whole_turnout is not None:
            whole = whole_turnout(table)
        elif name == t.STATION_TURNOUT:  # summed now: a million rows not held to the end of the fold
            stations = table_station_figures(table)
        elif name == t.SEATS:
            later[name] = table
        yield name, table
    table = withheld = None  # the consumer's (the last: station_results, 0.8 GB at a million stations)
    # Nothing after the result tables reads the votes and tallies, the bulk of the extraction: dropped, and given
    # back to the OS, before the history tables copy the envelope (station_results may share their buffers).
    ex.votes = Votes()
    ex.content[v.STATION_TALLY] = ex.content[v.STATION_TALLY].slice(0, 0)
    pa.default_memory_pool().release_unused()
    if whole is not None:
        stations = station_figures(whole.read, whole.figures)
    summary = national_summary(ex, res, {**reference, **later}, stations)
    reference = later = {}  # nothing after national_summary reads them
    yield t.NATIONAL_SUMMARY, named(summary)
    obs = observations(ex, res)
    yield t.OBSERVATIONS, named(obs)
    yield t.OBSERVATIONS_BY_DIVISION, named(observations_by_division(obs))
    news_table, mentions = news(ex, res)
    yield t.NEWS, named(news_table)
    yield t.NEWS_MENTIONS, named(mentions)
    yield from ((name, named(build(ex, res))) for name, build in HISTORY_TABLES.items())


def _metadata(dataset: str | None) -> Callable[[pa.Table | SlicedTable], pa.Table | SlicedTable]:
    """The table with the release name in its schema metadata (``DATASET_METADATA_KEY``), when there is one."""
    if dataset is None:
        return lambda table: table
    def named(table: pa.Table | SlicedTable) -> pa.Table | SlicedTable:
        if isinstance(table, SlicedTable):
            return table.map(named)
        return table.replace_schema_metadata({DATASET_METADATA_KEY: dataset.encode()})

    return named
