"""The NIST SP 1500-100 documents of a publish, built beside its gate for the release step to pick up.

The build starts when a publish staged from a small scope has staged the tables it reads (``StartWhenStaged``),
beside the rest of the stage; after a gate that passed, when the scope was too large for the build to share the
memory with the stage and the gate (``AHEAD_MAX_SCOPE_TALLIES``); else, for a whole fold, when the gate starts.
A process of its own runs ``cdf.release_documents`` on the staged files (what the release step would run) while
the publish goes on, and writes each document it built into the staging folder (``FOLDER``), then an index naming
the documents' size and sha256, the release time they carry and the inputs they were built from
(``cdf.export_inputs``: the export's code and the sha256 of each table it reads). The release step uses a document
only when that index matches its own tables and time and the file its size and sha256 (``Build.load``), else it
builds the document itself. So the published bytes are those of the sequential build, and a document of tables
the gate then re-staged (withholding) or refused never is published.

A gate that passes leaves the build running: the release step waits for it (``Build.started``) only once it has
done what it can without the documents (the run's step events, the previous manifest, the changes), which at a
million stations is 2-4 s more of the build hidden. When the steps run in processes of their own, the gate
step's process waits for the build as it exits (``_wait_for_started``), and the release step finds what it left in
the staging folder.

A process, not a thread: the gate (Great Expectations over pandas) holds the GIL much of the time; in a thread, the
export of a million-station election (2.1 s alone) beside 2.0 s of Python bytecode took 4.5-4.9 s, no faster than
one after the other. A fresh interpreter (``BOOT``), not a fork of the publish process (a fork would copy locks
held by its other threads; ``pipelines.ingest.parallel`` avoids it for the same reason), nor a child of
multiprocessing's fork server: such a child first imports its parent's ``__main__`` module, and under
``bench_live`` that was 1.7 s of CPU before the build began. The build imports the export alone (0.5 s of CPU),
and not pandas, which pyarrow would load (0.35 s) only to ask whether the values it converts are pandas objects.
For a small read the interpreter is started as the publish's plan is made (``prepare``) and waits for the build's
arguments, its imports done beside the read instead of before the build.
Preloading the export in a long-lived server was tried: it held 123 MB for the whole publish, and each build
counted most of those pages again in its own RSS (at a million stations most of what the 100,000-tally publish's
peak had above 1.5 GB).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Any

from pipelines.release import cdf
from pipelines.release.blobs import Blob
from pipelines.release.parquet import StagedFile

log = logging.getLogger(__name__)

# In the run's staging folder, beside the tables (no table has this name).
FOLDER = "_documents"
INDEX = "index.json"
# Started by the gate, the build runs at a lower priority than the gate, the publish's critical path: it takes the
# CPU the gate leaves. On the export's tables of a million stations, gated whole (2 cores, noisy): the gate took
# 7.1-7.6 s beside a build at this niceness (5 runs), 7.8-8.2 s beside one at the gate's own (2), 6.3-7.5 s alone (6).
NICENESS = 10
# Started by a scoped stage (``StartWhenStaged``), the build is the critical path: an incremental gate is shorter
# than the build beside it and the changes' count. At 10 it got the CPU last, behind the stage's splices, the gate
# and the count; the release waited 1.6-2.4 s for it at a million stations (``bench_live``, 1,000-10,000 tallies).
SCOPED_NICENESS = 0
# A scope of more tally events than this starts no build ahead: the build waits until the gate has passed and
# given its memory back. The gate's frames and the build's blocks both grow with the scope. At a million stations
# (``bench_live``) a 100,000-tally batch has a scope of 150,300 tally events. Side by side with the gate of an
# earlier version it peaked at 1.46-1.64 GB, so the limit was 100,000 and the release waited 3.6 s for a build
# started after the gate. With the gate's frames as they are now, building beside it peaked at 1.35-1.40 GB in
# two runs (in the first, the publisher's 0.88 GB beside the build's 0.45 GB), and the release did not wait.
# Larger scopes were not measured beside the gate, so they still wait for it.
AHEAD_MAX_SCOPE_TALLIES = 200_000
# The builds this process started and nobody waited for or discarded yet, by staging folder.
_STARTED: dict[Path, Build] = {}
# A publish that reads at most this many events starts the build's interpreter as its plan is made
# (``prepare``), so that by the time its tables are staged the interpreter has started and imported the export.
# Idle, it holds 80 MB (31 MB anonymous; 0.6 s of CPU to get there). A larger batch's stage peaks higher (at a
# million stations a 100,000-tally batch's, 1.35-1.41 GB), so it starts the build's interpreter when it needs it.
PREPARE_MAX_EVENTS = 50_000
# The interpreter ``prepare`` started, not yet taken by a build (at most one).
_SPARE: list[subprocess.Popen[bytes]] = []
# What the build's interpreter runs: it takes the publisher's import path (its first argument) and imports the
# export, then reads its arguments from stdin and runs ``_child``; the publisher writes them from a thread, so it
# never waits for the imports. pyarrow imports pandas the first time it converts Python values, only to ask
# whether they are pandas objects; a finder here says pandas is not installed, and pyarrow asks no more.
BOOT = """import json, sys
class NoPandas:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] == "pandas":
            raise ModuleNotFoundError("the NIST documents' build does not load pandas", name=name)
sys.meta_path.insert(0, NoPandas)
sys.path[:] = json.loads(sys.argv[1])
from pipelines.release.cdf_ahead import _child
_child(sys.stdin.buffer.read())
"""


def _child(arguments: bytes) -> None:
    """In the build's interpreter: ``_build`` with the arguments the publisher pickled; nothing when it sent none
    (a prepared interpreter let go of: ``let_go_of_spare``, or the publisher's exit)."""
    if arguments:
        _build(*pickle.loads(arguments))


def _interpreter() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", BOOT, json.dumps(sys.path)], stdin=subprocess.PIPE)


def prepare(events: int) -> bool:
    """Start the next build's interpreter now when the publish reads at most ``PREPARE_MAX_EVENTS`` ``events``
    (kept until a build takes it); whether one is ready."""
    if events > PREPARE_MAX_EVENTS:
        return False
    if not _SPARE or _SPARE[0].poll() is not None:
        let_go_of_spare()
        _SPARE.append(_interpreter())
    return True


def let_go_of_spare() -> None:
    """End the interpreter ``prepare`` started, if no build took it: it reads the end of its input and exits."""
    while _SPARE:
        spare = _SPARE.pop()
        spare.stdin.close()  # type: ignore[union-attr]
        spare.wait()


def _taken_interpreter() -> tuple[subprocess.Popen[bytes], bool]:
    """The prepared interpreter if it still waits, else a new one; and whether it was the prepared one."""
    spare = _SPARE.pop() if _SPARE else None
    if spare is not None and spare.poll() is None:
        return spare, True
    return _interpreter(), False


def _send(process: subprocess.Popen[bytes], arguments: bytes) -> None:
    """Write the build's ``arguments`` from a thread: its interpreter reads them once it has imported the export,
    and they can exceed a pipe's buffer."""
    def write() -> None:
        try:
            with process.stdin as stdin:  # type: ignore[union-attr]
                stdin.write(arguments)
        except OSError:
            pass  # the build ended before it read them: its exit status says it failed

    threading.Thread(target=write, name="cdf-arguments").start()


def _write(path: Path, body: bytes) -> None:
    """Write ``path`` whole or not at all (a partial file under another name, renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(body)
    partial.replace(path)


def _build(files: Mapping[str, StagedFile], folder: Path, generated_at: datetime,
           previous: Mapping[str, Any] | None, inputs: str, blocks: Path | None, niceness: int) -> None:
    """In the build process: the documents ``release_documents`` would build (not those it would carry over from
    ``previous``), each written to ``folder``, then the index that vouches for them (and the seconds it took, at
    what ``niceness``); ``blocks`` is the folder of cached blocks of contests."""
    os.nice(niceness)
    t0 = time.perf_counter()
    documents, entries = cdf.release_documents(files, generated_at=generated_at, previous=previous,
                                               cache=blocks)
    built = {key: doc for key, doc in documents.items() if isinstance(doc, Blob)}
    for key, doc in built.items():
        _write(folder / key, doc.body)
    index = {"inputs": inputs, "generated_at": generated_at.isoformat(), "build_s": time.perf_counter() - t0,
             "niceness": niceness,
             "documents": {key: {"bytes": entries[key]["bytes"], "sha256": entries[key]["sha256"],
                                 "members": list(doc.members)} for key, doc in built.items()}}
    _write(folder / INDEX, json.dumps(index, sort_keys=True).encode())


class Build:
    """The documents of one staging folder built in a process of their own, for the release at ``generated_at``
    (``previous``: the latest release's manifest, whose documents need no building when their inputs are equal;
    ``blocks``: the folder of cached blocks of contests, ``cdf_blocks``)."""

    def __init__(self, staging: Path, *, generated_at: datetime, previous: Mapping[str, Any] | None,
                 blocks: Path | None = None, niceness: int = NICENESS) -> None:
        self.folder = staging / FOLDER
        self.generated_at, self.blocks, self.niceness = generated_at, blocks, niceness
        # Only what release_documents reads of it (the manifest's tables are large at a million stations).
        self.previous = {k: previous[k] for k in ("release_id", "documents") if k in previous} if previous else None
        self.process: subprocess.Popen[bytes] | None = None
        self.prepared = False  # its interpreter was the one ``prepare`` started

    def start(self, files: Mapping[str, StagedFile]) -> None:
        """Build the documents of ``files``, in the background; what an earlier ``start`` built is discarded."""
        self.discard()
        inputs = cdf.export_inputs(files)
        if inputs is None:
            return  # without the export's code digest nothing could vouch for the bytes: the release builds them
        args = (dict(files), self.folder, self.generated_at, self.previous, inputs, self.blocks, self.niceness)
        self.process, self.prepared = _taken_interpreter()
        _STARTED[self.folder.parent] = self
        _send(self.process, pickle.dumps(args))

    @staticmethod
    def started(staging: Path) -> Build | None:
        """The build this process started for ``staging`` and nobody waited for or discarded yet."""
        return _STARTED.get(staging)

    def discard(self) -> None:
        """Stop the build if it still runs, and remove what it wrote."""
        self._forget()
        if self.process is not None:
            self.process.terminate()
            self.process.wait()
            self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def _forget(self) -> None:
        if _STARTED.get(self.folder.parent) is self:
            del _STARTED[self.folder.parent]

    def wait(self) -> dict[str, float]:
        """Wait for the build to end; the seconds waited for it here and those the build took (once its process
        had started and imported the export), and whether that process was the prepared one (``prepare``)."""
        self._forget()
        if self.process is None:
            return {}
        t0 = time.perf_counter()
        self.process.wait()
        waited = {"documents_wait_s": time.perf_counter() - t0}
        failed, self.process = self.process.returncode != 0, None
        try:
            built_s = None if failed else float(json.loads((self.folder / INDEX).read_bytes())["build_s"])
        except (OSError, ValueError, KeyError, TypeError):
            built_s = None  # ended well, yet its index is gone or damaged: nothing it left can be vouched for
        if built_s is None:
            # The release step builds the documents itself and raises whatever made this build fail.
            log.warning("building the NIST documents beside the gate failed: the release step builds them")
            shutil.rmtree(self.folder, ignore_errors=True)
            return waited
        return {**waited, "documents_ahead_s": built_s, "documents_interpreter_prepared": float(self.prepared)}

    @staticmethod
    def load(staging: Path, files: Mapping[str, StagedFile], generated_at: datetime) -> dict[str, Blob]:
        """The documents a build left in ``staging`` for exactly these tables and this release time, each as its
        index says (size and sha256); none when the index is missing, or names other inputs or another time."""
        folder = staging / FOLDER
        try:
            index = json.loads((folder / INDEX).read_bytes())
        except (OSError, ValueError):
            return {}
        inputs = cdf.export_inputs(files)
        if inputs is None or index.get("inputs") != inputs or index.get("generated_at") != generated_at.isoformat():
            return {}
        out = {}
        for key, expected in index["documents"].items():
            try:
                body = (folder / key).read_bytes()
            except OSError:
                continue
            members = tuple(expected.get("members") or ())
            if len(body) == expected["bytes"] == sum(members) and \
                    hashlib.sha256(body).hexdigest() == expected["sha256"]:
                out[key] = Blob(body, cdf.MEDIA_TYPE, members)
        return out


class StartWhenStaged:
    """Starts the documents' ``Build`` in ``staging`` once the tables the export reads (``cdf.TABLES``) are
    staged: called with the files staged so far (as ``scoped.Writing.staged``, after each table), once told
    the scope is small enough (``scoped``: ``AHEAD_MAX_SCOPE_TALLIES``). The release time is decided then
    (``generated_at``)."""

    def __init__(self, staging: Path, previous: Mapping[str, Any] | None, blocks: Path | None = None) -> None:
        self.staging, self.previous, self.blocks = staging, previous, blocks
        self.generated_at: datetime | None = None
        self.started_s = 0.0  # time.perf_counter() when the build started
        self.ahead = False  # the scope is small enough to build beside the stage's rest and the gate

    def scoped(self, scope_tallies: int) -> None:
        self.ahead = scope_tallies <= AHEAD_MAX_SCOPE_TALLIES

    def __call__(self, files: Mapping[str, StagedFile]) -> None:
        if not self.ahead or self.generated_at is not None or not all(name in files for name in cdf.TABLES):
            return
        self.generated_at, self.started_s = datetime.now(UTC), time.perf_counter()
        Build(self.staging, generated_at=self.generated_at, previous=self.previous, blocks=self.blocks,
              niceness=SCOPED_NICENESS).start({name: files[name] for name in cdf.TABLES})


def discard_started(under: Path) -> None:
    """Discard the builds this process started for staging folders in ``under`` (a run that ends, however)."""
    for staging, build in list(_STARTED.items()):
        if staging.is_relative_to(under):
            build.discard()


def _wait_for_started() -> None:
    """At the publisher's exit, wait for the builds nobody waited for: a gate step that runs in a process of its own
    ends before the release step, which finds what its build left in the staging folder."""
    for build in list(_STARTED.values()):
        if build.process is not None:
            build.process.wait()


# Run by multiprocessing's exit function: in a main process an ``atexit`` function, and the one exit work a
# multiprocessing child does (a step process of Dagster's multiprocess executor), which skips ``atexit``.
Finalize(None, _wait_for_started, exitpriority=0)
