"""``pipeline._unchanged``: which one-file tables the previous release has with the same bytes (copied in the
bucket instead of uploaded)."""

from __future__ import annotations

from pipelines.release.pipeline import _unchanged


def _entry(release: str, name: str, sha256: str, size: int, split: bool = False) -> dict:
    if split:
        return {"path": None, "files": [{"key": f"ds/tables/{name}/{sha256}.parquet", "sha256": sha256,
                                         "bytes": size}]}
    return {"path": f"tables/{name}.parquet",
            "files": [{"key": f"ds/releases/{release}/tables/{name}.parquet", "sha256": sha256, "bytes": size}]}


def test_only_one_file_tables_with_the_same_bytes_are_unchanged() -> None:
    previous = {"tables": {"same": _entry("r1", "same", "a" * 64, 10), "edited": _entry("r1", "edited", "b" * 64, 10),
                           "resized": _entry("r1", "resized", "c" * 64, 10),
                           "split": _entry("r1", "split", "d" * 64, 10, split=True)}}
    entries = {"same": _entry("r2", "same", "a" * 64, 10), "edited": _entry("r2", "edited", "e" * 64, 10),
               "resized": _entry("r2", "resized", "c" * 64, 11), "split": _entry("r2", "split", "d" * 64, 10),
               "new": _entry("r2", "new", "f" * 64, 10)}
    assert _unchanged(entries, previous) == {"same": "ds/releases/r1/tables/same.parquet"}
    assert _unchanged(entries, None) == {}
