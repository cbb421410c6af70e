"""Read one table of a Ballotstream release straight from its public URL, with no credentials.

    python examples/read_release.py URL

with URL a table's ``url`` from a release's manifest.json, e.g.
``http://127.0.0.1:17070/ballotstream-releases/<dataset>/releases/<id>/tables/station_turnout.parquet``.

The lines marked ``# README:`` are the snippets the README shows; tests/integration/test_public_access.py runs
exactly these lines, so the documentation cannot drift from what works. DuckDB can read the URL itself once its
``httpfs`` extension is installed (downloaded by DuckDB itself, so not offline); pyarrow needs nothing extra.
"""

from __future__ import annotations

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
    try:
        # With DuckDB's httpfs extension installed, DuckDB reads the URL directly.
        print(duckdb.sql(f"SELECT * FROM read_parquet('{url}') LIMIT 5"))  # README: duckdb
    except duckdb.Error as exc:
        print(f"(DuckDB's httpfs extension is not available here: {str(exc).splitlines()[0]})")


if __name__ == "__main__":
    main(sys.argv[1])
