"""Follow the releases topic; download every announced release over plain HTTP and verify it.

    python examples/release_downloader.py --out downloads/          # every release so far, then new ones
    python examples/release_downloader.py --max-events 1 --no-save  # verify the first announcement only

For each ``ReleasePublished`` event it fetches the manifest from ``manifest_url``, downloads each file of each table
(a large table is several files, listed in ``files``) and each document (the NIST SP 1500-100 export,
``cdf/<election_id>.json.gz``: its ``parts``, joined in order), and checks the size and SHA-256 the manifest gives.
No credentials are used: releases are public. Prints ``verified <release> <table or document> <sha256>`` per file
downloaded, ``unchanged <release> <table or document> <sha256>`` per file it already had, and a line per release
with what it downloaded; exits 1 if any file did not match. Saved files go to
``<out>/<dataset>/<release>/tables/<table>.parquet``, or ``tables/<table>/<n>.parquet`` for a table in several
files, and ``cdf/<election_id>.json.gz`` (gzip: read it with ``gzip.open`` or ``zcat``).

A release shares most of its files with the one before (a batch of results changes the files holding its rows), so
each file and document part is fetched once: saved files are kept by their SHA-256 under
``<out>/by-sha256/`` and linked into each release's folder, and with ``--no-save`` a file verified
earlier in the run is not fetched again. A kept file is hashed again before it is used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import urllib.request
from pathlib import Path

from pipelines.kafka.subscribe import subscribe
from pipelines.settings import Settings


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def url_of(manifest: dict, entry: dict) -> str:
    """A file's or part's URL: the manifest's ``base_url`` and the entry's bucket ``key`` (manifests of format
    ``ballotstream.release/1`` gave each entry its ``url``)."""
    return entry.get("url") or manifest["base_url"] + entry["key"]


class Store:
    """The files already downloaded and verified, by SHA-256: kept in ``folder`` (None: their checksums only, for
    ``--no-save``), so that a file a later release lists again is not fetched again."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.seen: set[tuple[str, int]] = set()
        self.downloaded = self.downloaded_bytes = 0

    def _path(self, sha256: str) -> Path | None:
        return None if self.folder is None else self.folder / sha256

    def copy_of(self, entry: dict) -> bytes | None:
        """The kept bytes of the file ``entry`` lists (its ``sha256`` and ``bytes``), if the folder holds them
        intact; None otherwise, and always with ``--no-save``."""
        path = self._path(entry["sha256"])
        if path is None or not path.is_file() or path.stat().st_size != entry["bytes"]:
            return None
        body = path.read_bytes()
        return body if hashlib.sha256(body).hexdigest() == entry["sha256"] else None

    def kept(self, entry: dict) -> bool:
        """Whether the file ``entry`` lists is here, still those bytes (with ``--no-save``: verified in this run)."""
        if self.folder is None:
            return (entry["sha256"], entry["bytes"]) in self.seen
        return self.copy_of(entry) is not None

    def fetched(self, url: str) -> bytes:
        body = download(url)
        self.downloaded += 1
        self.downloaded_bytes += len(body)
        return body

    def keep(self, sha256: str, body: bytes) -> None:
        """Keep verified bytes, written whole under a temporary name and renamed over a kept copy that was damaged
        (a new file: the release folders linked to the damaged one keep it)."""
        path = self._path(sha256)
        if path is None:
            self.seen.add((sha256, len(body)))
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{sha256}.{os.getpid()}")
        partial.write_bytes(body)
        partial.replace(path)

    def place(self, sha256: str, target: Path) -> None:
        """Put the kept file at ``target`` in a release folder: a hard link where the file system allows one."""
        source = self._path(sha256)
        if source is None:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)


def fetch(manifest: dict, file: dict, store: Store) -> bytes:
    """A file's bytes: a document in ``parts`` (one gzip member each) is its parts joined in order. Parts the
    store holds are not downloaded again (with ``--no-save`` it holds no bytes); a part whose bytes do not match
    its checksum is not kept."""
    if not file.get("parts"):
        return store.fetched(url_of(manifest, file))
    bodies = []
    for part in file["parts"]:
        kept = store.copy_of(part) if "sha256" in part else None
        if kept is not None:
            bodies.append(kept)
            continue
        body = store.fetched(url_of(manifest, part))
        if "sha256" in part and hashlib.sha256(body).hexdigest() == part["sha256"]:
            store.keep(part["sha256"], body)
        bodies.append(body)
    return b"".join(bodies)


def table_files(table: dict) -> list[dict]:
    """A table's files in order (manifests before ``files`` existed had the one file's ``url`` only)."""
    return table.get("files") or [{"url": table["url"], "sha256": table["sha256"], "bytes": table["bytes"]}]


def release_files(manifest: dict) -> list[tuple[str, dict, str]]:
    """(name, file entry, path in the release folder) of every file to fetch: each table's files, then each
    document the manifest gives a checksum for (documents listed before the export was compressed had none)."""
    out = []
    for name, table in sorted(manifest["tables"].items()):
        for n, file in enumerate(table_files(table)):
            out.append((name, file, table["path"] if table.get("path") else f"tables/{name}/{n:05d}.parquet"))
    for key, document in sorted((manifest.get("documents") or {}).items()):
        if "sha256" in document:
            out.append((key, document, document["path"]))
    return out


def verify_release(manifest_url: str, out: Path | None, store: Store) -> list[str]:
    """Download and check every file of one release that ``store`` does not hold; returns the problems found
    (empty: all good)."""
    manifest = json.loads(download(manifest_url))
    release = manifest["release_id"]
    problems = []
    before = (store.downloaded, store.downloaded_bytes)
    unchanged = 0
    for name, file, path in release_files(manifest):
        target = None if out is None else out / manifest["dataset"] / release / path
        if store.kept(file):
            unchanged += 1
            if target is not None:
                store.place(file["sha256"], target)
            print(f"unchanged {release} {name} {file['sha256']}", flush=True)
            continue
        body = fetch(manifest, file, store)
        digest = hashlib.sha256(body).hexdigest()
        if digest != file["sha256"] or len(body) != file["bytes"]:
            problems.append(f"{release} {name}: sha256 {digest} / {len(body)} bytes, manifest "
                            f"says {file['sha256']} / {file['bytes']} bytes")
            print(f"MISMATCH {release} {name}", flush=True)
            continue
        store.keep(digest, body)
        if target is not None:
            store.place(digest, target)
        print(f"verified {release} {name} {digest}", flush=True)
    print(f"release {release}: {store.downloaded - before[0]} files downloaded "
          f"({store.downloaded_bytes - before[1]:,} bytes), {unchanged} unchanged", flush=True)
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description="Download and verify every announced release.")
    parser.add_argument("--out", type=Path, default=Path("downloads"), help="where to save the tables")
    parser.add_argument("--no-save", action="store_true", help="verify only, save nothing")
    parser.add_argument("--max-events", type=int, default=None, help="stop after this many announcements")
    parser.add_argument("--new-only", action="store_true", help="only releases announced from now on")
    parser.add_argument("--group", default=None, help="consumer group, to resume where the last run stopped")
    args = parser.parse_args()

    problems: list[str] = []
    store = Store(None if args.no_save else args.out / "by-sha256")
    events = subscribe(Settings.from_env(), "releases", from_beginning=not args.new_only, follow=True,
                       group=args.group)
    try:
        for n, event in enumerate(events, start=1):
            if event["record_type"] == "ReleasePublished":
                value = event["value"]
                print(f"release {value['dataset']} {value['release_id']} (gate passed: {value['gate_passed']})",
                      flush=True)
                problems += verify_release(value["manifest_url"], None if args.no_save else args.out, store)
            if args.max_events is not None and n >= args.max_events:
                break
    except KeyboardInterrupt:
        pass
    finally:
        events.close()
    for problem in problems:
        print(problem, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
