"""Read one table of a Ballotstream release straight from its public URL, with no credentials.

    python examples/read_release.py URL

with URL a table's ``url`` from a release's manifest.json, e.g.
``http://127.0.0.1:17070/ballotstream-releases/<dataset>/releases/<id>/tables/station_turnout.parquet``.

The lines marked ``# README:`` are the snippets the README shows; tests/integration/test_public_access.py runs
exactly these lines, so the documentation cannot drift from what works. DuckDB reads the URL itself through its
``httpfs`` extension, loaded from the ``duckdb-ext-httpfs`` Python package (``pip install "duckdb==1.4.4"
"duckdb-ext-httpfs==1.4.4.20260205"``: the extension's version must equal DuckDB's), so DuckDB never downloads
anything; pyarrow needs nothing extra.
"""

from __future__ import annotations

import importlib.resources
import sys
import urllib.request
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs


def main(url: str) -> None:
    # Plain HTTP GET of the object, then Parquet from memory: works anywhere, no extension needed.
    tbl = pq.read_table(pa.py_buffer(urllib.request.urlopen(url).read()))  # README: pyarrow
    # Arrow tables in scope are queryable by name from DuckDB (no httpfs needed for this).
    print(duckdb.sql("SELECT COUNT(*) AS n FROM tbl").fetchall()[0][0], "rows")
    # The same object through the S3 API, anonymously (bucket/key is the URL's path).
    endpoint, key = f"{urlparse(url).scheme}://{urlparse(url).netloc}", urlparse(url).path.lstrip("/")
    tbl = pq.read_table(key, filesystem=fs.S3FileSystem(anonymous=True, endpoint_override=endpoint))  # README: s3
    print(tbl.schema)
    # DuckDB reads the URL itself with httpfs, loaded from the file the duckdb-ext-httpfs package installs for
    # this DuckDB version and platform (DuckDB's own INSTALL would download it).
    httpfs = importlib.resources.files("duckdb_ext") / "extensions" / f"v{duckdb.__version__}" / duckdb.execute("PRAGMA platform").fetchone()[0] / "httpfs.duckdb_extension"  # README: duckdb-httpfs
    duckdb.sql(f"LOAD '{httpfs}'")  # README: duckdb-load
    print(duckdb.sql(f"SELECT * FROM read_parquet('{url}') LIMIT 5"))  # README: duckdb


if __name__ == "__main__":
    main(sys.argv[1])
