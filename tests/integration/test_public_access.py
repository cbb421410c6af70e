"""Anonymous downloads, guarded writes, against the real versitygw: anyone can GET a release's Parquet, manifest,
catalog and page over plain HTTP; nobody without the publisher's keys can PUT or DELETE (HTTP 403), and a second,
read-only account cannot write either. The README snippets in examples/read_release.py are run as written."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from pipelines.release.s3 import s3_client
from pipelines.settings import Settings
from tests.support.catalog import ELECTION
from tests.support.releases import CONTENT_TYPES, Published, delete_dataset, upload_fake_releases

ROOT = Path(__file__).resolve().parents[2]
VERSITYGW = ROOT / ".state" / "bin" / "versitygw"
EXAMPLE = ROOT / "examples" / "read_release.py"
READER_KEY, READER_SECRET = "ballotstream-reader", "ballotstream-reader-secret"


@pytest.fixture
def published(services: Settings, unique: str) -> Iterator[Published]:
    dataset = f"test-{unique}"
    yield upload_fake_releases(services, dataset)
    delete_dataset(services, dataset)


def _get(url: str) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read(), response.headers.get("Content-Type", "")


def _status(url: str, method: str, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_anyone_downloads_parquet_manifest_catalog_and_page(published: Published):
    for manifest in published.manifests:
        prefix = f"{published.dataset}/releases/{manifest['release_id']}"
        status, body, _ = _get(published.url(f"{prefix}/manifest.json"))
        assert status == 200 and json.loads(body) == manifest
        for entry in manifest["tables"].values():
            status, body, content_type = _get(entry["url"])  # the manifest's own absolute url
            assert status == 200 and content_type == CONTENT_TYPES[".parquet"]
            assert hashlib.sha256(body).hexdigest() == entry["sha256"]
            assert pq.read_table(pa.py_buffer(body)).num_rows == entry["rows"]
    catalog_url = published.url(f"{published.dataset}/catalog.json")
    status, body, content_type = _get(catalog_url)
    assert status == 200 and content_type.startswith("application/json")
    catalog = json.loads(body)
    assert [r["release_id"] for r in catalog["releases"]] == [m["release_id"] for m in reversed(published.manifests)]
    # Every path resolves against the catalog's own URL to the file the manifest lists.
    for name, table in catalog["releases"][0]["tables"].items():
        status, body, _ = _get(urllib.parse.urljoin(catalog_url, table["path"]))
        assert status == 200 and hashlib.sha256(body).hexdigest() == table["sha256"], name
    status, body, content_type = _get(published.url(f"{published.dataset}/index.html"))
    assert status == 200 and content_type.startswith("text/html") and b"<svg" in body


def test_anonymous_put_and_delete_are_refused(published: Published):
    existing = f"{published.dataset}/catalog.json"
    before = published.files[existing]
    assert _status(published.url(f"{published.dataset}/new-object.txt"), "PUT", b"vandal") == 403
    assert _status(published.url(existing), "PUT", b"{}") == 403
    assert _status(published.url(existing), "DELETE") == 403
    # Listing is not part of the public grant either (only s3:GetObject is).
    assert _status(f"{published.settings.public_url('')}?list-type=2", "GET") == 403
    assert _get(published.url(existing))[1] == before
    anonymous = s3_client(published.settings, anonymous=True)
    with pytest.raises(ClientError) as refused:
        anonymous.put_object(Bucket=published.settings.release_bucket, Key=existing, Body=b"x")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def _admin(settings: Settings, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VERSITYGW), "admin", "-a", settings.s3_admin_access_key_id, "-s",
                           settings.s3_admin_secret_access_key, "--er", endpoint, *args],
                          capture_output=True, text=True, timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def iam_gateway(services: Settings) -> Settings:
    """The shared versitygw, which runs with an accounts store (``--iam-dir``, see infra/local_services.py)."""
    probe = _admin(services, services.s3_endpoint_url, "list-users")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    return services


def test_read_only_account_reads_but_cannot_write(iam_gateway: Settings, unique: str):
    created = _admin(iam_gateway, iam_gateway.s3_endpoint_url, "create-user", "-a", f"{READER_KEY}-{unique}",
                     "-s", READER_SECRET, "-r", "user")
    assert created.returncode == 0, created.stderr
    dataset = f"test-{unique}"
    published = upload_fake_releases(iam_gateway, dataset)
    # A "user" account owns no bucket and has no grant on this one: only the public GET applies to it.
    reader = s3_client(replace(iam_gateway, s3_access_key_id=f"{READER_KEY}-{unique}",
                               s3_secret_access_key=READER_SECRET))
    bucket, key = iam_gateway.release_bucket, f"{dataset}/catalog.json"
    assert reader.get_object(Bucket=bucket, Key=key)["Body"].read() == published.files[key]
    for attempt in (lambda: reader.put_object(Bucket=bucket, Key=key, Body=b"{}"),
                    lambda: reader.put_object(Bucket=bucket, Key=f"{dataset}/new.txt", Body=b"x"),
                    lambda: reader.delete_object(Bucket=bucket, Key=key)):
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert s3_client(iam_gateway).get_object(Bucket=bucket, Key=key)["Body"].read() == published.files[key]
    delete_dataset(iam_gateway, dataset)
    _admin(iam_gateway, iam_gateway.s3_endpoint_url, "delete-user", "-a", f"{READER_KEY}-{unique}")


def readme_line(label: str) -> str:
    """The line of examples/read_release.py marked ``# README: <label>``, as the README shows it."""
    for line in EXAMPLE.read_text().splitlines():
        if line.rstrip().endswith(f"# README: {label}"):
            return line.split("  # README:")[0].strip()
    raise AssertionError(f"no line marked '# README: {label}' in {EXAMPLE}")


def _turnout_entry(published: Published) -> tuple[str, dict[str, Any]]:
    manifest = published.manifests[-1]
    entry = manifest["tables"]["station_turnout"]
    return f"{published.dataset}/releases/{manifest['release_id']}/{entry['path']}", entry


def test_readme_one_liners_read_a_release_from_its_url(published: Published):
    key, entry = _turnout_entry(published)
    expected = pq.read_table(pa.py_buffer(published.files[key]))
    url = published.url(key)
    for label in ("pyarrow", "s3"):
        namespace: dict[str, Any] = {"url": url, "endpoint": published.settings.s3_endpoint_url,
                                     "key": f"{published.settings.release_bucket}/{key}"}
        exec("import urllib.request\nimport pyarrow as pa\nimport pyarrow.parquet as pq\nfrom pyarrow import fs\n"
             + readme_line(label), namespace)
        assert namespace["tbl"].equals(expected), label
    # And the whole example, as a user runs it.
    run = subprocess.run([sys.executable, str(EXAMPLE), url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"{entry['rows']} rows" in run.stdout and "turnout: double" in run.stdout
    assert sum(f"│ {ELECTION} " in line for line in run.stdout.splitlines()) == min(entry["rows"], 5)  # DuckDB's


_DUCKDB_CHECK = """
import importlib.resources, json, sys
import duckdb
url = sys.argv[1]
# No fetching or loading behind the lines' back: httpfs is there only if the README's LOAD line put it there.
duckdb.sql("SET autoinstall_known_extensions = false; SET autoload_known_extensions = false")
{lines}
count = duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{{url}}')").fetchone()[0]
[loaded] = duckdb.sql("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchone()
print(json.dumps({{"count": count, "httpfs_loaded": loaded}}))
"""


def test_readme_duckdb_lines_read_the_url(published: Published):
    """DuckDB reads the URL itself, with httpfs loaded from the duckdb-ext-httpfs package (never downloaded): the
    README's lines, exactly as the README shows them, in a fresh interpreter (so nothing loaded httpfs before)."""
    key, entry = _turnout_entry(published)
    readme = (ROOT / "README.md").read_text()
    lines = [readme_line(label) for label in ("duckdb-httpfs", "duckdb-load", "duckdb")]
    for line in lines:
        assert line in readme, line
    run = subprocess.run([sys.executable, "-c", _DUCKDB_CHECK.format(lines="\n".join(lines)), published.url(key)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    *shown, result = run.stdout.strip().splitlines()
    checked = json.loads(result)
    assert checked["count"] == entry["rows"]
    assert checked["httpfs_loaded"] is True
    # The LIMIT 5 query printed DuckDB's table: a header, then one line per row (each naming the election).
    assert "election_id" in shown[1]
    assert sum(f"│ {ELECTION} " in line for line in shown) == min(entry["rows"], 5)
