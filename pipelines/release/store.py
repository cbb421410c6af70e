"""The release store on S3: immutable release folders, and ``latest.json`` switched by a conditional write.

Order of writes is what makes a publish atomic for readers: data files, then ``manifest.json`` (a release
without a manifest is incomplete and never listed as published), then ``latest.json`` with ``If-Match`` on the
ETag read at the start, so of two concurrent publishers exactly one wins.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Container, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.errors import ChecksumMismatch, PublishConflict, ServiceUnavailable
from pipelines.release.blobs import Blob
from pipelines.release.parquet import StagedFile
from pipelines.release.s3 import JSON_TYPE, json_document, s3_client
from pipelines.settings import Settings

# Table files uploaded side by side by one publish.
UPLOAD_THREADS = 4
# ``ReleaseStore.sizes`` lists at most this many keys of a folder for each key it asks about, then asks one by one:
# a HEAD request costs as much CPU as listing 10-20 keys.
LISTED_PER_KEY = 10
LIST_PAGE = 1000  # keys a listing request returns (S3's most)

PARQUET_TYPE = "application/vnd.apache.parquet"
GZIP_TYPE = "application/gzip"


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """One release folder and its status: latest, published, or incomplete (no manifest)."""

    release_id: str
    status: str
    created_at: str | None
    gate_passed: bool | None
    rows: int | None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


_CONFLICT_CODES = ("PreconditionFailed", "412", "ConditionalRequestConflict")


class _HashingReader:
    """A read-only, non-seekable view of a file that hashes every byte handed to the uploader.

    Non-seekable on purpose: the uploader then reads the file once, front to back, buffering each part it sends
    (and re-sends a part from that buffer), so the digest is exactly that of the bytes that went to S3.
    """

    def __init__(self, fh: Any):
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.sha256.update(data)
        self.bytes += len(data)
        return bytes(data)


class ReleaseStore:
    """Reads and writes one dataset's releases in the release bucket.

    Args:
        settings: bucket, endpoint, keys.
        s3: a boto3 S3 client (default: one built from settings).
        dataset: dataset name (default: ``settings.dataset``).
    """

    def __init__(self, settings: Settings, s3: Any = None, dataset: str | None = None):
        self.settings = settings
        self.s3 = s3 or s3_client(settings)
        self.bucket = settings.release_bucket
        self.dataset = dataset or settings.dataset

    # --- keys and URLs --------------------------------------------------------------------------------------
    def release_prefix(self, release_id: str) -> str:
        return f"{self.dataset}/releases/{release_id}/"

    @property
    def latest_key(self) -> str:
        return f"{self.dataset}/latest.json"

    @property
    def tables_prefix(self) -> str:
        return f"{self.dataset}/tables/"

    def object_key(self, table: str, sha256: str) -> str:
        """Where a file of a large table is kept, named by its content and shared by every release that has it."""
        return f"{self.tables_prefix}{table}/{sha256}.parquet"

    @property
    def parts_prefix(self) -> str:
        return f"{self.dataset}/parts/"

    def part_key(self, sha256: str) -> str:
        """Where a part of a document (one gzip member, ``blobs.Blob``) is kept, named by its content and shared by
        every release that has it."""
        return f"{self.parts_prefix}{sha256}.gz"

    def listed_keys(self, manifest: dict[str, Any]) -> set[str]:
        """The shared, content-addressed objects ``manifest`` lists: its tables' files and its documents' parts
        (with the single-file tables of its own folder)."""
        keys = {key for name in manifest["tables"] for key in self.table_keys(manifest, name)}
        return keys | {part["key"] for doc in (manifest.get("documents") or {}).values()
                       for part in doc.get("parts") or () if "key" in part}

    def table_keys(self, manifest: dict[str, Any], name: str) -> list[str]:
        """The bucket keys of a release's table, in order (one for releases before tables had ``files``)."""
        entry = manifest["tables"][name]
        if "files" in entry:
            return [f["key"] for f in entry["files"]]
        return [self.release_prefix(manifest["release_id"]) + entry["path"]]

    def url(self, key: str) -> str:
        return self.settings.public_url(key)

    def manifest_url(self, release_id: str) -> str:
        return self.url(self.release_prefix(release_id) + "manifest.json")

    # --- reads ----------------------------------------------------------------------------------------------
    def get_json(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        """An object parsed as JSON and its ETag, or (None, None) when it does not exist."""
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None, None
            raise ServiceUnavailable(f"S3 get {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable(f"S3 get {key}: {exc}") from exc
        return json.loads(obj["Body"].read()), obj["ETag"]

    def latest(self) -> tuple[dict[str, Any] | None, str | None]:
        """``latest.json`` and its ETag (None, None before the first release)."""
        return self.get_json(self.latest_key)

    def manifest(self, release_id: str) -> dict[str, Any] | None:
        return self.get_json(self.release_prefix(release_id) + "manifest.json")[0]

    def release_ids(self) -> list[str]:
        """Every release folder, complete or not, oldest first."""
        prefix = f"{self.dataset}/releases/"
        ids: set[str] = set()
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                ids.update(p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", []))
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable(f"S3 list {prefix}: {exc}") from exc
        return sorted(ids)

    def published_manifests(self, until: Container[str] = ()) -> list[dict[str, Any]]:
        """Manifests of published releases, newest first: the chain of ``previous_release`` from latest, down to
        (not including) the first release in ``until``."""
        latest, _ = self.latest()
        out: list[dict[str, Any]] = []
        release_id = latest["release_id"] if latest else None
        while release_id and release_id not in until:
            manifest = self.manifest(release_id)
            if manifest is None:
                break
            out.append(manifest)
            release_id = manifest.get("previous_release")
        return out

    def list(self) -> list[ReleaseInfo]:
        """Every release folder with its status, newest first."""
        published = {m["release_id"]: m for m in self.published_manifests()}
        latest, _ = self.latest()
        infos = []
        for release_id in reversed(self.release_ids()):
            manifest = published.get(release_id) or self.manifest(release_id)
            if manifest is None:
                infos.append(ReleaseInfo(release_id, "incomplete (no manifest; never published)", None, None, None))
                continue
            if latest and release_id == latest["release_id"]:
                status = "latest"
            elif release_id in published:
                status = "published"
            else:
                status = "not published (lost a publish race)"
            rows = sum(t["rows"] for t in manifest["tables"].values())
            infos.append(ReleaseInfo(release_id, status, manifest["created_at"], manifest["gate"]["passed"], rows))
        return infos

    # --- writes ---------------------------------------------------------------------------------------------
    def put_json(self, key: str, body: dict[str, Any], **conditions: str) -> str:
        return self.put_bytes(key, json_document(body), JSON_TYPE, **conditions)

    def put_bytes(self, key: str, data: bytes, content_type: str, **conditions: str) -> str:
        """Write ``data`` at ``key``; returns the ETag.

        Raises:
            PublishConflict: a condition (``IfMatch``, ``IfNoneMatch``) failed.
            ServiceUnavailable: S3 cannot be reached or refused the write.
        """
        try:
            return str(self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                          **conditions)["ETag"])
        except ClientError as exc:
            if _code(exc) in _CONFLICT_CODES:
                raise PublishConflict(f"{key} changed while publishing: another publisher won") from exc
            raise ServiceUnavailable(f"S3 put {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable(f"S3 put {key}: {exc}") from exc

    def copy(self, source: str, key: str) -> None:
        """Copy the object at ``source`` to ``key`` inside the bucket (its bytes and content type; nothing is
        uploaded)."""
        try:
            self.s3.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source})
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable(f"S3 copy {source} to {key}: {exc}") from exc

    def put_file(self, key: str, staged: StagedFile, content_type: str = PARQUET_TYPE) -> tuple[str, int]:
        """Upload a staged file; returns the sha256 and size of the bytes actually uploaded."""
        try:
            with staged.path.open("rb") as fh:
                reader = _HashingReader(fh)
                # upload_fileobj switches to multipart for large tables.
                self.s3.upload_fileobj(reader, self.bucket, key, ExtraArgs={"ContentType": content_type})
        except (BotoCoreError, ClientError, OSError) as exc:
            raise ServiceUnavailable(f"S3 upload {key}: {exc}") from exc
        return reader.sha256.hexdigest(), reader.bytes

    def put_verified(self, key: str, staged: StagedFile, content_type: str = PARQUET_TYPE) -> None:
        """``put_file``, then check the uploaded bytes' sha256 and size against ``staged``'s.

        Raises:
            ChecksumMismatch: the file changed between staging and upload.
        """
        sha256, size = self.put_file(key, staged, content_type)
        if (sha256, size) != (staged.sha256, staged.bytes):
            raise ChecksumMismatch(
                f"{key}: uploaded {size:,} bytes with sha256 {sha256}, staged as {staged.bytes:,} bytes with "
                f"{staged.sha256} (the staged file changed during the upload)")

    def exists(self, key: str, size: int) -> bool:
        """Whether ``key`` holds an object of ``size`` bytes (a content-addressed file: its name is its sha256,
        checked against the bytes when it was uploaded)."""
        return self.size(key) == size

    def sizes(self, keys: Iterable[str]) -> dict[str, int]:
        """The size of each of ``keys`` the bucket holds, found by listing their folders rather than asking for
        each where that is cheaper: a million stations' release keeps some 200 files of the previous one, and 200
        HEAD requests take 1-2 s of botocore's CPU (4-9 ms each), a listing 0.2-0.35 ms a key listed. A folder is
        listed up to the last of its keys asked for, or until it has listed ``LISTED_PER_KEY`` keys for each asked
        for (a folder of many releases' files, before gc); what remains is asked for one key at a time.

        Raises:
            ServiceUnavailable: S3 cannot be reached.
        """
        wanted: dict[str, list[str]] = {}
        for key in sorted(set(keys)):
            wanted.setdefault(key.rpartition("/")[0] + "/", []).append(key)
        found: dict[str, int] = {}
        for prefix, these in wanted.items():
            listed_to = self._list_sizes(prefix, these, found)
            for key in these:
                if key > listed_to:
                    size = self.size(key)
                    if size is not None:
                        found[key] = size
        return found

    def _list_sizes(self, prefix: str, keys: list[str], found: dict[str, int]) -> str:
        """List ``prefix`` into ``found`` (those of ``keys``, sorted) until past the last of them or the listing
        budget; the last key the listing covers (a key up to it that ``found`` lacks is not in the bucket)."""
        wanted, budget, last = set(keys), LISTED_PER_KEY * len(keys), ""
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix,
                                           PaginationConfig={"PageSize": LIST_PAGE}):
                listed = page.get("Contents", [])
                found.update((o["Key"], int(o["Size"])) for o in listed if o["Key"] in wanted)
                budget -= len(listed)
                if not page.get("IsTruncated") or not listed:
                    return max(keys)  # the whole folder: a key not found is not there
                last = listed[-1]["Key"]
                if last >= keys[-1] or budget <= 0:
                    return last
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable(f"S3 list {prefix}: {exc}") from exc
        return last

    def size(self, key: str) -> int | None:
        """The size of ``key``, or None when the bucket does not hold it.

        Raises:
            ServiceUnavailable: S3 cannot be reached.
        """
        try:
            return int(self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise ServiceUnavailable(f"S3 head {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable(f"S3 head {key}: {exc}") from exc

    def get_file(self, key: str, path: Path) -> tuple[str, int]:
        """Download ``key`` to ``path``; returns the sha256 and size of the bytes received.

        Raises:
            FileNotFoundError: there is no such object.
            ServiceUnavailable: S3 cannot be reached.
        """
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=key)
            digest, size = hashlib.sha256(), 0
            with path.open("wb") as out:
                for chunk in obj["Body"].iter_chunks(8 * 1024 * 1024):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from exc
            raise ServiceUnavailable(f"S3 get {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable(f"S3 get {key}: {exc}") from exc
        return digest.hexdigest(), size

    def write_release(self, release_id: str, files: list[StagedFile],
                      documents: dict[str, dict[str, Any] | Blob], manifest: dict[str, Any],
                      before_manifest: Callable[[], dict[str, Any]] | None = None, listed: Container[str] = (),
                      unchanged: Mapping[str, str] | None = None) -> dict[str, int]:
        """Upload data files, then what ``before_manifest`` uploads (its result joins the manifest), then the
        documents (datapackage and validation report as JSON, the NIST exports as ``Blob``: those with ``members``
        as the parts their manifest entry lists), then the manifest.

        Each file's checksum is taken from the bytes as they are uploaded and must equal its manifest entry, or
        the manifest is not written (``ChecksumMismatch``). The manifest is written with ``If-None-Match: *``: a
        release folder is written once, never replaced.

        A content-addressed file (a table's, a document's part) is not uploaded again when the bucket has it and
        ``listed`` (the keys the previous release's manifest lists) names it: ``ballotstream gc`` never removes
        what a manifest lists. Any other is uploaded even if the bucket has it (left by a failed publish, say): that
        makes it young again, so gc, which removes unlisted files older than its grace period, leaves it until this
        manifest lists it.

        A table kept in the release folder (one file) that ``unchanged`` names (table -> the previous release's
        key of the same bytes) is copied inside the bucket, not uploaded: its bytes were checked when they were
        uploaded there, and the copy's size is checked; a copy that fails is uploaded instead.

        Returns:
            How many table files were uploaded, left where the previous release has them, and copied; how many
            document parts were uploaded and left (``parts_uploaded``, ``parts_kept``).
        """
        counts = self._write_tables(release_id, files, manifest, listed, unchanged or {})
        if before_manifest is not None:
            manifest.update(before_manifest())
        prefix = self.release_prefix(release_id)
        counts.update(self._write_parts(release_id, documents, manifest.get("documents") or {}, listed))
        for name, body in documents.items():
            if isinstance(body, Blob) and not body.members:
                self.put_bytes(prefix + name, body.body, body.content_type)
            elif not isinstance(body, Blob):
                self.put_json(prefix + name, body)
        self.put_json(prefix + "manifest.json", manifest, IfNoneMatch="*")
        return counts

    def _write_parts(self, release_id: str, documents: Mapping[str, Any], entries: Mapping[str, dict[str, Any]],
                     listed: Container[str]) -> dict[str, int]:
        """The parts every document entry lists: uploaded from the document's ``Blob``, or left where the
        previous release has them (a carried-over document has no ``Blob``: its parts must be there)."""
        work: list[tuple[dict[str, Any], memoryview | None]] = []
        for name, entry in entries.items():
            blob = documents.get(name)
            bodies = blob.parts() if isinstance(blob, Blob) and blob.members else [None] * len(entry.get("parts", ()))
            work += zip(entry.get("parts", ()), bodies, strict=True)
        there = self.sizes([part["key"] for part, _ in work if part["key"] in listed])

        def write(item: tuple[dict[str, Any], memoryview | None]) -> str:
            part, body = item
            if there.get(part["key"]) == part["bytes"]:
                return "kept"
            if body is None:
                raise ServiceUnavailable(f"{part['key']}, a part of a document carried over from the previous "
                                         f"release, is not in the bucket; release {release_id} was not published")
            digest = hashlib.sha256(body).hexdigest()
            if (digest, len(body)) != (part["sha256"], part["bytes"]):
                raise ChecksumMismatch(f"{part['key']}: {len(body):,} bytes with sha256 {digest}, listed as "
                                       f"{part['bytes']:,} with {part['sha256']}; release {release_id} was not "
                                       "published")
            self.put_bytes(part["key"], bytes(body), GZIP_TYPE)
            return "uploaded"

        counts = {"parts_uploaded": 0, "parts_kept": 0}
        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            for how in pool.map(write, work):
                counts[f"parts_{how}"] += 1
        return counts

    def _write_tables(self, release_id: str, files: list[StagedFile], manifest: dict[str, Any],
                      listed: Container[str], unchanged: Mapping[str, str]) -> dict[str, int]:
        """``write_release``'s table files: uploaded, kept where they are, or copied; how many of each."""
        counts = {"uploaded": 0, "kept": 0, "copied": 0}
        work = [(part, entry, bool(staged.parts) and entry["key"] in listed,
                 None if staged.parts else unchanged.get(staged.table))
                for staged in files
                for part, entry in zip(staged.parts or (staged,), manifest["tables"][staged.table]["files"],
                                       strict=True)]
        there = self.sizes([entry["key"] for _, entry, keepable, _ in work if keepable])

        def write(item: tuple[StagedFile, dict[str, Any], bool, str | None]) -> str:
            part, entry, keepable, source = item
            if keepable and there.get(entry["key"]) == entry["bytes"]:
                return "kept"  # the same content is already there, from the previous release
            if source is not None and self._copied(source, entry["key"], entry["bytes"]):
                return "copied"
            try:
                self.put_verified(entry["key"], replace(part, sha256=entry["sha256"], bytes=entry["bytes"]))
            except ChecksumMismatch as exc:
                raise ChecksumMismatch(f"{exc}; release {release_id} was not published") from exc
            return "uploaded"

        # Several files at once: each upload waits on the network and the server as much as on this machine
        # (boto3's clients are thread-safe). The first failure is raised once the others have finished.
        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            for how in pool.map(write, work):
                counts[how] += 1
        return counts

    def _copied(self, source: str, key: str, size: int) -> bool:
        """Whether ``source`` was copied to ``key`` with ``size`` bytes (a failed copy: the caller uploads)."""
        try:
            self.copy(source, key)
            return self.exists(key, size)
        except ServiceUnavailable:
            return False

    def switch_latest(self, manifest: dict[str, Any], expected_etag: str | None) -> None:
        """Point ``latest.json`` at the release, only if nobody switched it since we read ``expected_etag``."""
        key = self.release_prefix(manifest["release_id"]) + "manifest.json"
        body = {
            "dataset": self.dataset,
            "release_id": manifest["release_id"],
            "manifest": key,
            "manifest_url": self.url(key),
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        condition = {"IfMatch": expected_etag} if expected_etag else {"IfNoneMatch": "*"}
        try:
            self.put_json(self.latest_key, body, **condition)
        except PublishConflict as exc:
            winner = (self.latest()[0] or {}).get("release_id")
            raise PublishConflict(
                f"another publisher switched {self.latest_key} first (latest is now release {winner}); release "
                f"{manifest['release_id']} was not published: publish again if its events are not in {winner}",
                winner) from exc

    # --- announcements (pipelines/release/announce.py) --------------------------------------------------------
    def announced_key(self, release_id: str) -> str:
        return self.release_prefix(release_id) + "announced.json"

    def announced(self, release_id: str) -> bool:
        """Whether Kafka acknowledged the release's ``ReleasePublished`` (its marker exists)."""
        return self.get_json(self.announced_key(release_id))[0] is not None

    def claim_key(self, release_id: str) -> str:
        return self.release_prefix(release_id) + "announce-claim.json"

    def claim_announcement(self, release_id: str, *, takeover_after_s: float | None = None) -> bool:
        """Claim the right to announce a release (a conditional write: of two runs, one gets it).

        With ``takeover_after_s``, a claim older than that (its holder presumably died) is taken over.
        """
        body = {"release_id": release_id, "claimed_at": datetime.now(UTC).isoformat(timespec="milliseconds")}
        try:
            self.put_json(self.claim_key(release_id), body, IfNoneMatch="*")
            return True
        except PublishConflict:
            pass
        claim, etag = self.get_json(self.claim_key(release_id))
        if takeover_after_s is None or claim is None or etag is None:
            return False
        age = (datetime.now(UTC) - datetime.fromisoformat(claim["claimed_at"])).total_seconds()
        if age < takeover_after_s:
            return False
        try:
            self.put_json(self.claim_key(release_id), body, IfMatch=etag)
            return True
        except PublishConflict:
            return False

    def mark_announced(self, release_id: str, position: dict[str, Any]) -> None:
        """Record where the release's announcement is on the releases topic (written after Kafka's ack)."""
        self.put_json(self.announced_key(release_id), {
            "release_id": release_id, **position, "marked_at": datetime.now(UTC).isoformat(timespec="seconds")})

    def store_blocked_report(self, attempt_id: str, report: dict[str, Any]) -> str:
        """Keep the report of a publish the gate blocked; returns its URL."""
        key = f"{self.dataset}/reports/{attempt_id}/validation.json"
        self.put_json(key, report)
        return self.url(key)
