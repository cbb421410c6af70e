"""Follow the releases topic; download every announced release over plain HTTP and verify it.

    python examples/release_downloader.py --out downloads/          # every release so far, then new ones
    python examples/release_downloader.py --max-events 1 --no-save  # verify the first announcement only

For each ``ReleasePublished`` event it fetches the manifest from ``manifest_url``, downloads each file of each table
(a large table is several files, listed in ``files``) and each document (the NIST SP 1500-100 export,
``cdf/<election_id>.json.gz``: its ``parts``, joined in order), and checks the size and SHA-256 the manifest gives.
No credentials are used: releases are public. Prints ``verified <release> <table or document> <sha256>`` per file;
exits 1 if any file did not match. Saved files go to ``<out>/<dataset>/<release>/tables/<table>.parquet``, or
``tables/<table>/<n>.parquet`` for a table in several files, and ``cdf/<election_id>.json.gz`` (gzip: read it
with ``gzip.open`` or ``zcat``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
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


def fetch(manifest: dict, file: dict) -> bytes:
    """A file's bytes: a document in ``parts`` (one gzip member each) is its parts joined in order."""
    if file.get("parts"):
        return b"".join(download(url_of(manifest, part)) for part in file["parts"])
    return download(url_of(manifest, file))


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


def verify_release(manifest_url: str, out: Path | None) -> list[str]:
    """Download and check every file of one release; returns the problems found (empty: all good)."""
    manifest = json.loads(download(manifest_url))
    problems = []
    for name, file, path in release_files(manifest):
        body = fetch(manifest, file)
        digest = hashlib.sha256(body).hexdigest()
        if digest != file["sha256"] or len(body) != file["bytes"]:
            problems.append(f"{manifest['release_id']} {name}: sha256 {digest} / {len(body)} bytes, manifest "
                            f"says {file['sha256']} / {file['bytes']} bytes")
            print(f"MISMATCH {manifest['release_id']} {name}", flush=True)
            continue
        if out is not None:
            target = out / manifest["dataset"] / manifest["release_id"] / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        print(f"verified {manifest['release_id']} {name} {digest}", flush=True)
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
    events = subscribe(Settings.from_env(), "releases", from_beginning=not args.new_only, follow=True,
                       group=args.group)
    try:
        for n, event in enumerate(events, start=1):
            if event["record_type"] == "ReleasePublished":
                value = event["value"]
                print(f"release {value['dataset']} {value['release_id']} (gate passed: {value['gate_passed']})",
                      flush=True)
                problems += verify_release(value["manifest_url"], None if args.no_save else args.out)
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
