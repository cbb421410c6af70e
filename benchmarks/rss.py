"""Peak memory of a benchmark's whole process tree (the ingest and read workers run beside the main process)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


class TreeRss:
    """Samples the summed RSS of this process (or of process ``root``) and all its descendants: the workers run
    beside the parent, so the parent's own peak understates what the machine must hold.

    ``peak_mb`` counts every resident page; ``peak_anon_mb`` only anonymous ones (``RssAnon``: heaps, Arrow's
    buffers), not the pages of files mapped into memory (``RssFile``: the checkpoint's extraction is read through
    ``mmap``, and checksumming it makes all of it resident), which are clean page cache the kernel takes back
    under memory pressure without writing anything."""

    def __init__(self, every_s: float = 0.25, root: int | None = None) -> None:
        self.peak_mb = 0.0
        self.peak_anon_mb = 0.0
        # At the peak: each process's (name, RSS MB, anonymous MB), to say which one held it.
        self.at_peak: list[tuple[str, float, float]] = []
        # (seconds since start, RSS MB, anonymous MB) of the tree, every sample.
        self.timeline: list[tuple[float, float, float]] = []
        self._every = every_s
        self._root = root or os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _name(pid: str) -> str:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return "?"
        # Each argument's last path component: the figures name the program, not where this machine keeps it.
        return f"{pid} " + " ".join(a.decode(errors="replace").rsplit("/", 1)[-1] for a in argv[:4])[:120]

    @staticmethod
    def _rss_kb(pid: str) -> tuple[int, int]:
        """(VmRSS, RssAnon) of ``pid`` in KiB; zeros once it has gone."""
        found = {}
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS:", "RssAnon:")):
                    found[line.split(":")[0]] = int(line.split()[1])
        except OSError:
            pass
        return found.get("VmRSS", 0), found.get("RssAnon", 0)

    def _tree(self) -> list[str]:
        # All descendants, not just children: forkserver workers (ingest) are the fork server's children.
        children: dict[str, list[str]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = stat.read_text().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(stat.parent.name)
        out, todo = [], [str(self._root)]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, ()))
        return out

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.is_set():
            pids = self._tree()
            sizes = [self._rss_kb(pid) for pid in pids]
            total, anon = round(sum(s[0] for s in sizes) / 1024, 1), round(sum(s[1] for s in sizes) / 1024, 1)
            self.timeline.append((round(time.perf_counter() - started, 2), total, anon))
            if total > self.peak_mb:
                self.at_peak = [(self._name(pid), round(s[0] / 1024, 1), round(s[1] / 1024, 1))
                                for pid, s in zip(pids, sizes, strict=True) if s[0]]
            self.peak_mb = max(self.peak_mb, total)
            self.peak_anon_mb = max(self.peak_anon_mb, anon)
            self._stop.wait(self._every)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
