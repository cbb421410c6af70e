"""Election night: how soon new or corrected tallies are live, on top of a large history, and what it costs.

Usage: ``.venv/bin/python -m benchmarks.bench_live --stations 1000000 [--contests 1] [--selections M]
[--batches 1000,10000,100000] [--new-share 0.5] [--spread random|region|places] [--places K] [--keep-topics]
[--keep-dataset] [--ephemeral-dagster] [--profile DIR]``

Setup: the generator's election (seed 1, ``--contests`` per station, default 1) with ``--stations`` stations plus
one per new tally to come. The tallies of its results CSV that the batches will bring as new are held back, chosen
at random (``--spread region``: one run of consecutive tallies; ``--spread places``: ``--places`` runs per batch;
see ``choose_roles``); with one contest per
station they are whole stations that have not reported yet, and the history holds exactly ``--stations`` stations' tallies. The history is ingested into fresh topics and published once (a full
rebuild, which leaves the checkpoint).

Then, for each size in ``--batches``: that many StationTally events, ``--new-share`` of them new (held-back
tallies) and the rest corrections (new versions of tallies in the history: one vote moved between two of the
tally's selections, so every sum still holds, with a later ``occurred_at``, hence a later ``recorded_at``: the
fold's latest-version rule picks them). They go in as CSV files through ``ingest`` (what ``ballotstream ingest``
runs); ``t_produced`` is when it returned, i.e. when Kafka acknowledged the last event. A publish is then started
at once (no watch interval) through ``run_publish`` and ``latest.json`` is polled until it names a release whose
snapshot covers the topics' end offsets after the batch: ``live_s = t_live - t_produced``. Last, a full rebuild
(``full=True, force=True``) of the same snapshot.

Every publish runs in its own child process, started and warmed up before the events are produced (``dagster_project.run.warm_up``, what ``publish --watch`` loads before it waits: the publish path, Dagster's job
and instance storage, Great Expectations; the seconds it took are ``publisher_warm_up_s``, which a cold CLI run
would add); a fresh process per publish, so one publish's
memory is not counted in the next. The Dagster instance is persistent (SQLite), as ``make`` sets one up, but the
benchmark's own, so no other publish shares it; ``--ephemeral-dagster`` publishes with an in-memory one instead
(Dagster records some 450 events per publish; the local instance's event log keeps its SQLite connections
open, ``dagster_project/instance.py``, where Dagster's own opened and closed one per event, seconds per publish).

Peak RSS is sampled every 0.25 s over the publishing process and its read workers; the process's own
``ru_maxrss`` is beside it. Bytes uploaded: every object under the dataset's prefix that is new or rewritten,
listed with the administrator's keys before and after, split into the release folder, checkpoint objects and
the rest (``latest.json``, the catalog page).

The figures are checked, and the run fails rather than report a wrong one: the live release is the one the
publish made and covers the batch's offsets; it read exactly the batch's events, incrementally from the previous
release; its changes are exactly the batch's (rows added for new tallies, two rows changed per correction);
the full rebuild read everything and its tables equal the last incremental release's, byte for byte.

Figures go to
``benchmarks/results/live-<stations>x<contests>[x<selections>][-region|-places<K>][-ephemeral-dagster].json``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import platform
import random
import resource
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchmarks.calibration import calibrate
from benchmarks.election import fresh_settings, ingest_timed, synthesize_files
from benchmarks.rss import TreeRss
from pipelines.generator.synth import TIMES
from pipelines.kafka import snapshot
from pipelines.kafka.admin import delete_topics, ensure_topics
from pipelines.release.pipeline import event_topic_names
from pipelines.release.s3 import s3_client
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings

OUT = Path(__file__).resolve().parent / "results"
# ``--spread places``: how many separate runs of stations each batch comes from, unless ``--places`` says.
PLACES = 10
RESULTS_CSV = "results.csv"
POLL_S = 0.1  # how often latest.json is read while a publish runs (the figure is late by up to this)
PUBLISH_TIMEOUT_S = 3 * 3600
# The targets, for a 1,000,000-station history on this 2-core machine.
TARGETS = {"live_s_10000": 10.0, "incremental_peak_rss_mb": 1500.0, "full_s": 90.0, "full_peak_rss_mb": 3000.0,
           "bytes_per_share": 2.0}


class BenchmarkError(RuntimeError):
    """A figure would be wrong (the release does not hold what was produced, the publish read something else)."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise BenchmarkError(message)


# --- the election: the history and the batches ---------------------------------------------------------------

@dataclass
class Batch:
    """One batch of tallies: ``new`` held back from the history, ``corrected`` new versions of history tallies."""

    size: int
    new: int
    corrected: int
    files: list[Path] = field(default_factory=list)
    new_rows: int = 0  # CSV rows (station_results rows) of the new tallies


def plan_batches(sizes: list[int], new_share: float) -> list[Batch]:
    batches = []
    for size in sizes:
        new = round(size * new_share)
        batches.append(Batch(size, new, size - new))
    return batches


def _tally_blocks(lines: Iterator[str], key_columns: list[int]) -> Iterator[list[str]]:
    """Consecutive rows of one station (and contest): one StationTally each, as ingest groups them."""
    block: list[str] = []
    key: list[str] | None = None
    for line in lines:
        _require('"' not in line, f"{RESULTS_CSV}: a quoted field; this split reads plain rows only")
        fields = line.rstrip("\n").split(",")
        row_key = [fields[i] for i in key_columns]
        if block and row_key != key:
            yield block
            block = []
        block.append(line)
        key = row_key
    if block:
        yield block


def correction(block: list[str], columns: list[str], when: str) -> list[str]:
    """A new version of a tally: one vote moved from its largest selection to the next (every sum holds), at
    ``when``."""
    votes, occurred = columns.index("votes"), columns.index("occurred_at")
    rows = [line.rstrip("\n").split(",") for line in block]
    _require(len(rows) >= 2, "a tally with one selection cannot be corrected by moving a vote")
    top = max(range(len(rows)), key=lambda i: int(rows[i][votes]))
    _require(int(rows[top][votes]) > 0, "a tally without votes cannot be corrected by moving a vote")
    rows[top][votes] = str(int(rows[top][votes]) - 1)
    other = rows[(top + 1) % len(rows)]
    other[votes] = str(int(other[votes]) + 1)
    for row in rows:
        row[occurred] = when
    return [",".join(row) + "\n" for row in rows]


def choose_roles(rng: random.Random, tallies: int, batches: list[Batch], spread: str = "random",
                 places: int = PLACES) -> dict[int, tuple[str, int]]:
    """Which tallies of the CSV (numbered in its order) each batch brings: tally -> ("new" or "corrected", batch).

    ``spread``: ``random``, each tally drawn from the whole country; ``region``, one run of consecutive tallies
    of the CSV (which lists stations region by region), the new ones first: results arriving region by region,
    as when a region's commission reports; ``places``, each batch ``places`` runs of consecutive tallies at random
    places, each with its share of the batch's new and corrected tallies: several commissions reporting at once.
    """
    n_new = sum(b.new for b in batches)
    n_corrected = sum(b.corrected for b in batches)
    _require(n_new + n_corrected <= tallies, f"{n_new + n_corrected:,} batch tallies but only {tallies:,} tallies")
    if spread == "places":
        return _roles_in_places(rng, tallies, batches, places)
    if spread == "region":
        start = rng.randrange(tallies - (n_new + n_corrected) + 1)
        chosen = list(range(start, start + n_new + n_corrected))
    else:
        chosen = rng.sample(range(tallies), n_new + n_corrected)
    role: dict[int, tuple[str, int]] = {}
    new_ids, corrected_ids = iter(chosen[:n_new]), iter(chosen[n_new:])
    for b_index, batch in enumerate(batches):
        role.update({next(new_ids): ("new", b_index) for _ in range(batch.new)})
        role.update({next(corrected_ids): ("corrected", b_index) for _ in range(batch.corrected)})
    return role


def _roles_in_places(rng: random.Random, tallies: int, batches: list[Batch], places: int
                     ) -> dict[int, tuple[str, int]]:
    """``choose_roles`` for ``places``: run ``i`` of a batch holds its ``i``-th share of the batch's new tallies,
    then of its corrected ones; no run overlaps another (drawn again when it would)."""
    _require(places >= 1, "--places needs at least 1")
    taken = bytearray(tallies)
    role: dict[int, tuple[str, int]] = {}
    for b_index, batch in enumerate(batches):
        runs = min(places, batch.size)
        for i in range(runs):
            new = batch.new * (i + 1) // runs - batch.new * i // runs
            corrected = batch.corrected * (i + 1) // runs - batch.corrected * i // runs
            length = new + corrected
            for _ in range(1000):
                start = rng.randrange(tallies - length + 1)
                if not any(taken[start:start + length]):
                    break
            else:
                raise BenchmarkError(f"no free run of {length:,} tallies for batch {b_index + 1}: too few tallies")
            taken[start:start + length] = b"\x01" * length
            role.update({start + j: ("new" if j < new else "corrected", b_index) for j in range(length)})
    return role


def split_results(data: Path, history: Path, batches: list[Batch], tallies: int, seed: int = 7,
                  spread: str = "random", places: int = PLACES) -> int:
    """Write the history's results CSV (every tally but the held-back ones) to ``history`` and each batch's new
    and corrected tallies beside it; returns the tallies in the history. The source CSV is removed (at a million
    stations it is gigabytes).

    ``spread`` and ``places``: as for ``choose_roles``."""
    rng = random.Random(seed)
    role = choose_roles(rng, tallies, batches, spread, places)
    source = data / RESULTS_CSV
    history.mkdir(parents=True)
    outs: dict[tuple[str, int], Any] = {}
    kept = 0
    with source.open(encoding="utf-8") as src, (history / RESULTS_CSV).open("w", encoding="utf-8") as hist:
        header = src.readline()
        columns = header.rstrip("\n").split(",")
        keys = [columns.index(c) for c in ("station_id", "contest_id") if c in columns]
        hist.write(header)
        for b_index, batch in enumerate(batches):
            for kind in ("new", "corrected"):
                path = history.parent / f"batch{b_index + 1}-{kind}.csv"
                outs[(kind, b_index)] = path.open("w", encoding="utf-8")
                outs[(kind, b_index)].write(header)
                batch.files.append(path)
        seen = 0
        for seen, block in enumerate(_tally_blocks(src, keys), start=1):
            kind, b_index = role.get(seen - 1, ("history", -1))
            if kind == "history":
                hist.writelines(block)
                kept += 1
            elif kind == "new":
                outs[(kind, b_index)].writelines(block)
                batches[b_index].new_rows += len(block)
            else:  # the tally stays in the history; its new version comes with the batch
                hist.writelines(block)
                kept += 1
                when = (datetime.fromisoformat(TIMES.corrected) + timedelta(minutes=b_index + 1)).isoformat()
                outs[(kind, b_index)].writelines(correction(block, columns, when))
        for out in outs.values():
            out.close()
    _require(seen == tallies, f"{RESULTS_CSV} holds {seen:,} tallies, the generator reported {tallies:,}")
    for batch in batches:  # a batch without new (or corrected) tallies has no such file
        batch.files = [p for p in batch.files if p.stat().st_size > len(header.encode())]
    source.unlink()
    return kept


# --- the publisher: one child process per publish ------------------------------------------------------------

def _publisher(conn: Connection, settings: Settings, dagster_home: str | None, profile_to: str | None) -> None:
    """Child process: import the publish path, say ready, publish once when told, send back what happened (and,
    with ``profile_to``, write cProfile's statistics of the publish there)."""
    # A Dagster instance of its own (None: an ephemeral one): runs of one instance share their assets' stored
    # outputs (the staged snapshot among them), so another publish on the same instance at the same time could
    # swap them.
    if dagster_home is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = dagster_home
    started = time.perf_counter()
    from dagster_project.run import run_publish, warm_up

    warm_up(settings)
    conn.send(("ready", (os.getpid(), time.perf_counter() - started)))
    full = conn.recv()
    started = time.perf_counter()
    profiler = cProfile.Profile() if profile_to else None
    try:
        if profiler is not None:
            profiler.enable()
        outcome = run_publish(settings, force=full, full=full)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile_to))
        _require(outcome.manifest is not None, f"nothing published: {outcome.skipped}")
        assert outcome.manifest is not None
        conn.send(("done", {
            "release_id": outcome.manifest["release_id"],
            "publish_s": time.perf_counter() - started,
            "timings_s": outcome.timings,
            "publisher_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            # The largest of the waited-for children: the read workers.
            "read_worker_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        }))
    except BaseException:  # the parent reports it and stops
        conn.send(("error", traceback.format_exc()))


class Publisher:
    """A warmed-up child process that publishes once."""

    def __init__(self, settings: Settings, dagster_home: Path | None, profile_to: Path | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        home = str(dagster_home) if dagster_home else None
        # Not a daemon: the publish starts read workers of its own.
        self.process = ctx.Process(target=_publisher, args=(child, settings, home, str(profile_to) if profile_to else None),
                                   daemon=False)
        self.process.start()
        child.close()
        try:
            tag, body = self._receive(timeout_s=600)
            _require(tag == "ready", f"publisher: {tag} {body}")
        except BaseException:
            self.close()
            raise
        self.pid, self.warm_up_s = body

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the process if it still runs (the benchmark stopped early): multiprocessing would otherwise wait
        for it at exit, and a publisher still waiting to be told to start never ends."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(30)
        self.conn.close()

    def _receive(self, timeout_s: float | None) -> tuple[str, Any]:
        if not self.conn.poll(timeout_s):
            raise BenchmarkError(f"publisher process {self.process.pid} did not answer in {timeout_s} s")
        try:
            return self.conn.recv()
        except EOFError as exc:
            self.process.join(5)
            raise BenchmarkError(f"publisher process died (exit code {self.process.exitcode})") from exc

    def start(self, full: bool) -> None:
        self.conn.send(full)

    def result(self, timeout_s: float | None = 0) -> dict[str, Any] | None:
        """The publish's result once it ended (None while it runs).

        Raises:
            BenchmarkError: the publish failed, or the process died.
        """
        if timeout_s == 0 and not self.conn.poll():
            if not self.process.is_alive() and not self.conn.poll():
                raise BenchmarkError(f"publisher process died (exit code {self.process.exitcode})")
            return None
        tag, body = self._receive(timeout_s)
        self.process.join(60)
        if tag != "done":
            raise BenchmarkError(f"the publish failed:\n{body}")
        return body


# --- what a publish did ----------------------------------------------------------------------------------------

def _end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    return snapshot.capture(settings, event_topic_names(settings)).end


def missing(manifest: dict[str, Any], end: dict[tuple[str, int], int]) -> dict[str, list[int]]:
    """The partitions whose offsets below ``end`` the release's snapshot does not all hold: held and wanted end."""
    held = {(p["topic"], p["partition"]): p["end_offset"] for p in manifest["snapshot"]}
    return {f"{t}[{p}]": [held.get((t, p)), offset] for (t, p), offset in sorted(end.items())
            if held.get((t, p), -1) < offset}


def covers(manifest: dict[str, Any], end: dict[tuple[str, int], int]) -> bool:
    """Whether the release's snapshot holds every offset below ``end``."""
    return not missing(manifest, end)


def list_objects(admin: Any, settings: Settings) -> dict[str, tuple[int, str, str]]:
    """Every object under the dataset's prefix: key -> (size, ETag, last modified)."""
    out = {}
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=settings.release_bucket,
                                                                Prefix=f"{settings.dataset}/"):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = (obj["Size"], obj["ETag"], obj["LastModified"].isoformat())
    return out


def uploaded(before: dict[str, tuple[int, str, str]], after: dict[str, tuple[int, str, str]], dataset: str
             ) -> dict[str, Any]:
    """Bytes of the objects that are new or rewritten, by where they went; an object with the size and ETag of one
    that was there before is a copy made inside the bucket (an unchanged one-file table or NIST document), counted
    apart: its bytes were not uploaded."""
    existing = {(size, etag) for size, etag, _ in before.values()}
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    # Only a new release folder's objects can be copies: a content-addressed file uploaded again keeps its key.
    copied = {k: v[0] for k, v in changed.items()
              if k not in before and k.startswith(f"{dataset}/releases/") and (v[0], v[1]) in existing}
    written = {k: v[0] for k, v in changed.items() if k not in copied}
    parts = {"release": 0, "checkpoint": 0, "parts": 0, "other": 0}
    for key, size in written.items():
        where = key[len(dataset) + 1:].split("/", 1)[0]
        parts[{"releases": "release", "checkpoints": "checkpoint", "parts": "parts"}.get(where, "other")] += size
    largest = sorted(written.items(), key=lambda kv: -kv[1])[:5]
    return {**parts, "total": sum(parts.values()), "objects": len(written),
            "copied_in_bucket": {"objects": len(copied), "bytes": sum(copied.values())},
            "largest": [{"key": k[len(dataset) + 1:], "bytes": v} for k, v in largest],
            "by_object": by_object(written, dataset)}


def by_object(written: dict[str, int], dataset: str) -> dict[str, int]:
    """The bytes written, by what they are: a table's content-addressed files (``tables/<table>/``), the documents'
    parts (``parts/``), the checkpoint's objects (``checkpoints/``), each file of the release folder by its name
    there (``manifest.json``, ``tables/<table>.parquet``), and each file of the dataset folder (``index.html``,
    ``catalog.json``, ``latest.json``); largest first."""
    out: dict[str, int] = {}
    for key, size in written.items():
        rest = key[len(dataset) + 1:]
        head, _, tail = rest.partition("/")
        if head == "tables":
            name = f"tables/{tail.split('/', 1)[0]}/"
        elif head in ("parts", "checkpoints"):
            name = f"{head}/"
        elif head == "releases":
            name = tail.split("/", 1)[1] if "/" in tail else tail
        else:
            name = rest
        out[name] = out.get(name, 0) + size
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def await_live(store: ReleaseStore, publisher: Publisher, end: dict[tuple[str, int], int], previous: str | None
               ) -> tuple[float, dict[str, Any], bool]:
    """Poll ``latest.json`` until it names a release other than ``previous`` covering ``end``; then wait for
    the publish to end. Returns when it went live (perf_counter), the publish's result, and whether the
    switch was only seen after the publish ended (then the figure is late by up to one poll)."""
    deadline = time.perf_counter() + PUBLISH_TIMEOUT_S
    seen, live_at, live_id = previous, None, None
    result = None
    while live_at is None and result is None:
        latest, _ = store.latest()
        now = time.perf_counter()
        if latest and latest["release_id"] != seen:
            seen = latest["release_id"]
            manifest = store.manifest(seen)
            if manifest is not None and covers(manifest, end):
                live_at, live_id = now, seen
                break
        result = publisher.result()
        _require(time.perf_counter() < deadline, f"no live release after {PUBLISH_TIMEOUT_S} s")
        time.sleep(POLL_S)
    late = live_at is None
    result = result or publisher.result(timeout_s=PUBLISH_TIMEOUT_S)
    assert result is not None
    if live_at is None:
        latest, _ = store.latest()
        live_at, live_id = time.perf_counter(), latest["release_id"] if latest else None
        manifest = store.manifest(live_id) if live_id else None
        _require(manifest is not None and covers(manifest, end),
                 f"the publish ended ({result['release_id']}) but latest.json names {live_id}, which does not "
                 f"hold the produced offsets: {manifest and missing(manifest, end)} (held, produced end)")
    _require(live_id == result["release_id"],
             f"latest.json went live with {live_id}, not the release the publish made ({result['release_id']})")
    return live_at, result, late


@dataclass
class Bucket:
    """The dataset's objects before a publish, listed (with the clients) before the events are produced, so
    nothing slow sits between the last acknowledgement and the publish's start."""

    store: ReleaseStore
    admin: Any
    before: dict[str, tuple[int, str, str]] = field(default_factory=dict)

    def snapshot(self) -> Bucket:
        self.before = list_objects(self.admin, self.store.settings)
        return self


def publish(settings: Settings, bucket: Bucket, publisher: Publisher, *, full: bool, produced_at: float | None,
            previous: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start the warmed-up ``publisher`` now and measure it; returns its figures and the release's manifest."""
    store, admin, before = bucket.store, bucket.admin, bucket.before
    load = [round(x, 2) for x in os.getloadavg()]
    cpu_before = time.process_time()
    with TreeRss(root=publisher.pid) as tree:
        started = time.perf_counter()
        publisher.start(full)
        end = _end_offsets(settings)
        live_at, result, late = await_live(store, publisher, end, previous)
    observer_cpu_s = time.process_time() - cpu_before
    manifest = store.manifest(result["release_id"])
    assert manifest is not None
    timings = result["timings_s"]
    # What the timed stages leave out: Dagster's own steps, outputs and check records (as in bench_publish).
    timed = timings.get("stage_total_s", 0.0) + sum(
        timings.get(k, 0.0) for k in ("validate_s", "documents_wait_s", "documents_s", "upload_s",
                                      "catalog_announce_s"))
    figures = {
        "release_id": result["release_id"],
        "read_from": manifest["read"]["from"],
        "events_read": manifest["read"]["events_read"],
        "fold": manifest["read"].get("fold"),
        "snapshot_events": sum(p["end_offset"] - p["start_offset"] for p in manifest["snapshot"]),
        "live_s": round(live_at - produced_at, 2) if produced_at is not None else None,
        "start_to_live_s": round(live_at - started, 2),
        "live_seen_after_publish_ended": late,
        "publish_s": round(result["publish_s"], 2),
        # Not in publish_s: importing the publish path in the waiting process (what a cold CLI run would add).
        "publisher_warm_up_s": round(publisher.warm_up_s, 2),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "rest_s": round(result["publish_s"] - timed, 2),
        "peak_rss_process_tree_sampled_mb": tree.peak_mb,
        "peak_anon_rss_process_tree_sampled_mb": tree.peak_anon_mb,  # without the mapped files' pages
        "at_peak_by_process": tree.at_peak,
        # (s since the start, RSS MB, anonymous MB), one sample in two (0.5 s apart)
        "rss_timeline": tree.timeline[::2],
        "publisher_maxrss_mb": round(result["publisher_maxrss_mb"], 1),
        "read_worker_maxrss_mb": round(result["read_worker_maxrss_mb"], 1),
        "uploaded_bytes": uploaded(before, list_objects(admin, settings), settings.dataset),
        "changes": {n: manifest["changes"]["tables"].get(n) for n in ("events", "noncurrent_events",
                                                                      "station_results", "station_turnout")},
        "load_average_before": load,
        # CPU this process spent watching (polling latest.json, sampling RSS) while the publish ran, on the same
        # cores: the benchmark's own interference.
        "observer_cpu_s": round(observer_cpu_s, 2),
    }
    return figures, manifest


# --- the checks --------------------------------------------------------------------------------------------------

def check_batch(figures: dict[str, Any], manifest: dict[str, Any], batch: Batch, previous: str) -> None:
    _require(manifest["previous_release"] == previous,
             f"release {manifest['release_id']} follows {manifest['previous_release']}, not {previous}")
    _require(figures["read_from"] == f"incremental from release {previous}",
             f"the publish of a {batch.size:,}-tally batch was not incremental: {figures['read_from']}")
    _require(figures["events_read"] == batch.size,
             f"the publish read {figures['events_read']:,} events, the batch is {batch.size:,}")
    expected = {
        "events": {"added": batch.size, "changed": 0, "removed": 0},
        "noncurrent_events": {"added": batch.corrected, "changed": 0, "removed": 0},  # the versions corrected
        "station_results": {"added": batch.new_rows, "changed": 2 * batch.corrected, "removed": 0},
        "station_turnout": {"added": batch.new, "changed": 0, "removed": 0},
    }
    for table, want in expected.items():
        got = {k: figures["changes"][table][k] for k in want} if figures["changes"][table] else None
        _require(got == want, f"{table}: the release changed {got}, the batch should change {want}")


def check_full(figures: dict[str, Any], manifest: dict[str, Any], reason: str) -> None:
    _require(figures["read_from"] == reason, f"expected {reason!r}, the publish says {figures['read_from']!r}")
    _require(figures["events_read"] == figures["snapshot_events"],
             f"a full rebuild read {figures['events_read']:,} of {figures['snapshot_events']:,} events")


def differing_tables(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Tables whose bytes differ between two releases (or that only one has)."""
    names = set(a["tables"]) | set(b["tables"])
    return sorted(n for n in names if (a["tables"].get(n) or {}).get("sha256") != (b["tables"].get(n) or {}).get(
        "sha256"))


# --- the run -----------------------------------------------------------------------------------------------------

def _ingest_batch(settings: Settings, batch: Batch) -> tuple[dict[str, Any], float]:
    """Produce a batch through ingest; its figures and when Kafka had acknowledged the last event."""
    figures = ingest_timed(batch.files, settings)
    produced_at = time.perf_counter()
    _require(figures["ingest_rejected"] == 0 and figures["ingest_produced"] == batch.size,
             f"ingest produced {figures['ingest_produced']:,} and rejected {figures['ingest_rejected']:,} of "
             f"{batch.size:,} tallies")
    return figures, produced_at


def _check_offsets(settings: Settings, before: dict[tuple[str, int], int], events: int) -> None:
    """Only the batch went to the event topics (the publish must read exactly it)."""
    after = _end_offsets(settings)
    moved = sum(after[tp] - before.get(tp, 0) for tp in after)
    _require(moved == events, f"the event topics moved by {moved:,} offsets for a {events:,}-event batch")


def run(stations: int, contests: int, selections: int | None, sizes: list[int], new_share: float,
        keep_topics: bool, keep_dataset: bool, ephemeral_dagster: bool = False, spread: str = "random",
        profile: Path | None = None, places: int = PLACES) -> dict[str, Any]:
    """Build the history, publish it, then each batch and a full rebuild; the figures of all of it."""
    batches = plan_batches(sizes, new_share)
    held_back = sum(b.new for b in batches)
    settings = fresh_settings(dataset=f"bench-live-{stations}-{uuid.uuid4().hex[:8]}")
    ensure_topics(settings)
    admin = s3_client(settings, admin=True)
    figures: dict[str, Any] = {
        "stations_in_history": stations, "election_stations": stations + held_back, "contests_per_station": contests,
        "selections": selections or "default", "batches": sizes, "new_share": new_share, "spread": spread,
        **({"places": places} if spread == "places" else {}),
        "table_file_bytes": settings.table_file_bytes,  # BALLOTSTREAM_TABLE_FILE_BYTES: where tables are cut
        "path": "ingest (CSV) then run_publish in a warmed-up child process, as ballotstream publish runs it",
        "dagster_instance": "ephemeral (in memory)" if ephemeral_dagster else "persistent (SQLite), the benchmark's",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                    "calibration_at_start": calibrate()},
    }
    try:
        with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
            settings = replace(settings, staging_dir=str(Path(tmp) / "staging"))
            bucket = Bucket(ReleaseStore(settings), admin)
            home = None if ephemeral_dagster else _dagster_home(Path(tmp))
            figures.update(_run_in(settings, bucket, Path(tmp), home, batches, stations + held_back, contests,
                                   selections, spread, profile, places))
    finally:
        if not keep_dataset:  # first: S3 is there even when a broker restart makes the topics' deletion fail
            for key in list_objects(admin, settings):
                admin.delete_object(Bucket=settings.release_bucket, Key=key)
        if not keep_topics:
            delete_topics(settings)
    figures["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    figures["machine"]["calibration_after"] = calibrate()
    figures["kept"] = {"topic_prefix": settings.topic_prefix if keep_topics else None,
                       "dataset": settings.dataset if keep_dataset else None}
    return figures


def _dagster_home(tmp: Path) -> Path:
    """A persistent instance like ``make``'s (``.state/dagster``: ``dagster_project.instance``), but the
    benchmark's own."""
    from dagster_project.instance import write_instance_yaml  # here: the parent stays without Dagster's imports

    home = tmp / "dagster"
    write_instance_yaml(home)
    return home


def _profile_file(folder: Path | None, name: str) -> Path | None:
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.prof"


def _run_in(settings: Settings, bucket: Bucket, tmp: Path, home: Path | None, batches: list[Batch],
            election_stations: int, contests: int, selections: int | None, spread: str = "random",
            profile: Path | None = None, places: int = PLACES) -> dict[str, Any]:
    files, synth, synth_s = synthesize_files(tmp / "data", election_stations, contests, selections)
    t0 = time.perf_counter()
    kept = split_results(tmp / "data", tmp / "history", batches, synth.events[RESULTS_CSV], spread=spread,
                         places=places)
    history_files = [tmp / "history" / RESULTS_CSV if p.name == RESULTS_CSV else p for p in files]
    setup: dict[str, Any] = {"synth_s": round(synth_s, 1), "split_s": round(time.perf_counter() - t0, 1),
                             "history_csv_tallies": kept}
    with Publisher(settings, home, _profile_file(profile, "history")) as publisher:
        bucket = bucket.snapshot()
        setup.update(ingest_timed(history_files, settings))
        produced_at = time.perf_counter()
        _require(setup["ingest_rejected"] == 0, f"the history's ingest rejected {setup['ingest_rejected']:,} events")
        history, manifest = publish(settings, bucket, publisher, full=False, produced_at=produced_at, previous=None)
    check_full(history, manifest, "full rebuild (no earlier release)")
    _require(history["snapshot_events"] == setup["ingest_produced"],
             f"the history's release holds {history['snapshot_events']:,} events, ingest produced "
             f"{setup['ingest_produced']:,}")
    runs: list[dict[str, Any]] = []
    for batch in batches:
        previous = manifest["release_id"]
        with Publisher(settings, home, _profile_file(profile, f"batch-{batch.size}")) as publisher:
            bucket, end_before = bucket.snapshot(), _end_offsets(settings)
            produce, produced_at = _ingest_batch(settings, batch)
            figures, manifest = publish(settings, bucket, publisher, full=False, produced_at=produced_at,
                                        previous=previous)
        # After the publish, not between the acknowledgement and its start; the publish read exactly the batch
        # only if nothing else went to the event topics.
        _check_offsets(settings, end_before, batch.size)
        check_batch(figures, manifest, batch, previous)
        runs.append({"tallies": batch.size, "new": batch.new, "corrected": batch.corrected,
                     "produce": {k: produce[k] for k in ("ingest_s", "ingest_produced")}, **figures})
    last = manifest
    with Publisher(settings, home, _profile_file(profile, "full-rebuild")) as publisher:
        bucket = bucket.snapshot()
        full, manifest = publish(settings, bucket, publisher, full=True, produced_at=None,
                                 previous=last["release_id"])
    check_full(full, manifest, "full rebuild (requested)")
    total = setup["ingest_produced"] + sum(b.size for b in batches)
    _require(full["snapshot_events"] == total, f"the full rebuild holds {full['snapshot_events']:,} events, "
                                               f"{total:,} were produced")
    full["tables_differing_from_last_incremental"] = differing_tables(last, manifest)
    return {"setup": setup, "history_publish": history, "batches_published": runs, "full_rebuild": full,
            "table_rows": {n: manifest["tables"][n]["rows"] for n in ("station_results", "station_turnout")}}


# --- the report --------------------------------------------------------------------------------------------------

def byte_shares(figures: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per batch, the share of the history's stations its tallies touch beside the share of the public release's
    bytes it uploaded (the release folder's objects, the documents' parts and the table files, the catalog page;
    not the private checkpoint), against what the history's first publish uploaded: the whole release. Also the
    share of the table files and page alone, and of the documents' parts alone (runs before documents had parts
    count them in the release folder)."""
    whole = figures["history_publish"]["uploaded_bytes"]
    public = whole["release"] + whole.get("parts", 0) + whole["other"]
    out = {}
    for run_ in figures["batches_published"]:
        up = run_["uploaded_bytes"]
        out[str(run_["tallies"])] = {
            "stations": round(run_["tallies"] / figures["stations_in_history"], 4),
            "public_bytes": round((up["release"] + up.get("parts", 0) + up["other"]) / public, 4),
            "table_files_and_page": round(up["other"] / whole["other"], 4),
            "document_parts": round(up.get("parts", 0) / whole["parts"], 4) if whole.get("parts") else None}
    return out


def targets(figures: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, met or not (they are for a 1,000,000-station history). "Bytes proportional to the
    change": an update touching 1 % of the stations uploads about 1 % of the public release's bytes, taken here
    as at most twice its share of the stations."""
    out: dict[str, Any] = {}
    for run_ in figures["batches_published"]:
        if run_["tallies"] == 10_000:
            out["10000_live_s_le_10"] = run_["live_s"] <= TARGETS["live_s_10000"]
            shares = byte_shares(figures)["10000"]
            out["10000_bytes_about_their_share"] = (shares["public_bytes"]
                                                    <= TARGETS["bytes_per_share"] * shares["stations"])
    incremental = [r["peak_rss_process_tree_sampled_mb"] for r in figures["batches_published"]]
    if incremental:
        out["incremental_peak_rss_le_1_5_gb"] = max(incremental) <= TARGETS["incremental_peak_rss_mb"]
    full = figures["full_rebuild"]
    out["full_rebuild_le_90_s"] = full["publish_s"] <= TARGETS["full_s"]
    out["full_rebuild_le_3_gb"] = full["peak_rss_process_tree_sampled_mb"] <= TARGETS["full_peak_rss_mb"]
    return out


def table(figures: dict[str, Any]) -> str:
    rows = [("history (first publish)", figures["history_publish"])]
    rows += [(f"{r['tallies']:,} ({r['new']:,} new, {r['corrected']:,} corr.)", r)
             for r in figures["batches_published"]]
    rows.append(("full rebuild", figures["full_rebuild"]))
    head = (f"{'publish':34s} {'read':>10s} {'live s':>7s} {'pub. s':>7s} {'read s':>7s} {'fold s':>7s} "
            f"{'write s':>7s} {'files w/r':>10s} {'valid s':>7s} {'upload':>7s} {'cat+ann':>7s} {'rest':>6s} "
            f"{'MB up':>8s} {'(rel/ckpt/parts/other)':>26s} {'RSS MB':>8s} {'anon MB':>8s}")
    lines = [head, "-" * len(head)]
    for name, r in rows:
        t, up = r["timings_s"], r["uploaded_bytes"]
        live = r["live_s"] if r["live_s"] is not None else r["start_to_live_s"]
        split = "/".join(f"{up.get(k, 0) / 1e6:.1f}" for k in ("release", "checkpoint", "parts", "other"))
        files = f"{t.get('files_written', 0):.0f}/{t.get('files_reused', 0):.0f}"
        lines.append(f"{name:34s} {r['events_read']:>10,} {live:>7.2f} {r['publish_s']:>7.2f} "
                     f"{t.get('read_wall_s', 0):>7.2f} {t.get('fold_s', 0):>7.2f} {t.get('write_s', 0):>7.2f} "
                     f"{files:>10s} {t.get('validate_s', 0):>7.2f} "
                     f"{t.get('upload_s', 0):>7.2f} {t.get('catalog_announce_s', 0):>7.2f} {r['rest_s']:>6.2f} "
                     f"{up['total'] / 1e6:>8.1f} {split:>26s} {r['peak_rss_process_tree_sampled_mb']:>8.0f} "
                     f"{r.get('peak_anon_rss_process_tree_sampled_mb', 0):>8.0f}")
    lines.append("live s: last event acknowledged -> latest.json names a release holding it (full rebuild: "
                 "publish started -> latest.json switched); pub. s: run_publish end to end; files w/r: table files "
                 "written / reused from the last release; rest: what its timed stages leave out (Dagster); RSS: peak "
                 "of the publishing process tree, sampled; anon: the same without pages of mapped files")
    return "\n".join(lines)


def result_path(stations: int, contests: int, selections: int | None, ephemeral_dagster: bool = False,
                spread: str = "random", places: int = PLACES) -> Path:
    shape = f"{stations}x{contests}{f'x{selections}' if selections else ''}"
    where = {"region": "-region", "places": f"-places{places}"}.get(spread, "")
    suffix = f"{where}{'-ephemeral-dagster' if ephemeral_dagster else ''}"
    return OUT / f"live-{shape}{suffix}.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=1_000_000, help="stations in the history")
    parser.add_argument("--contests", type=int, default=1, help="contests per station (default 1)")
    parser.add_argument("--selections", type=int, default=None, help="selections per contest (synth's default)")
    parser.add_argument("--batches", default="1000,10000,100000", help="tallies per batch, comma-separated")
    parser.add_argument("--new-share", type=float, default=0.5, help="share of each batch that is new tallies")
    parser.add_argument("--keep-topics", action="store_true", help="keep the topics (default: deleted)")
    parser.add_argument("--keep-dataset", action="store_true", help="keep the dataset's objects (default: deleted)")
    parser.add_argument("--ephemeral-dagster", action="store_true",
                        help="publish with an in-memory Dagster instance (default: a persistent SQLite one, as make "
                             "sets up), to see what the instance's event log costs")
    parser.add_argument("--spread", choices=("random", "region", "places"), default="random",
                        help="where each batch's tallies come from: anywhere (default), one region's run of "
                             "stations, or --places runs of stations at random places")
    parser.add_argument("--places", type=int, default=PLACES,
                        help=f"with --spread places: runs of stations per batch (default {PLACES})")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="write cProfile's statistics of each publish to DIR (history.prof, batch-N.prof, "
                             "full-rebuild.prof; read them with python -m pstats); the profiler slows the publish")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.batches.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or not 0.0 <= args.new_share <= 1.0 or args.places < 1:
        parser.error("--batches needs sizes >= 1, --new-share a share in [0, 1] and --places at least 1")
    figures = run(args.stations, args.contests, args.selections, sizes, args.new_share, args.keep_topics,
                  args.keep_dataset, args.ephemeral_dagster, args.spread, args.profile, args.places)
    tables_differ = figures["full_rebuild"]["tables_differing_from_last_incremental"]
    figures["byte_shares"] = byte_shares(figures)
    figures["targets_met_1m"] = targets(figures)
    out = result_path(args.stations, args.contests, args.selections, args.ephemeral_dagster, args.spread,
                      args.places)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(table(figures))
    print(f"share of the stations touched -> of the public release's bytes uploaded: {figures['byte_shares']}")
    print(f"targets (for 1,000,000 stations): {figures['targets_met_1m']}")
    machine = figures["machine"]
    print(f"machine calibration (benchmarks/calibration.py): {machine['calibration_at_start']['calibration_s']} s "
          f"at the start, {machine['calibration_after']['calibration_s']} s after")
    print(f"written to {out}")
    # Written first: the figures stand, but the incremental releases were not what a full rebuild gives.
    _require(not tables_differ, f"the full rebuild's tables differ from the last incremental release's: "
                                f"{', '.join(tables_differ)}")


if __name__ == "__main__":
    main()
