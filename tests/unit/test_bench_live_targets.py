"""``bench_live``'s verdict on the issue's targets, bytes proportional to the change among them."""

from __future__ import annotations

from typing import Any

from benchmarks.bench_live import by_object, byte_shares, targets


def _figures(release_mb: float, tables_mb: float) -> dict[str, Any]:
    """A history of 1,000,000 stations whose first publish uploaded a 10 MB release folder and 190 MB of table
    files, then a 10,000-tally batch uploading ``release_mb`` / ``tables_mb`` of them and 5 MB of checkpoint."""
    def run(release: float, checkpoint: float, other: float, **more: Any) -> dict[str, Any]:
        return {"uploaded_bytes": {"release": release * 1e6, "checkpoint": checkpoint * 1e6, "other": other * 1e6},
                "peak_rss_process_tree_sampled_mb": 1_000.0, **more}
    return {"stations_in_history": 1_000_000,
            "history_publish": run(10, 150, 190),
            "batches_published": [run(release_mb, 5, tables_mb, tallies=10_000, live_s=8.0)],
            "full_rebuild": run(0.3, 150, 1, publish_s=80.0)}


def test_a_batch_touching_one_percent_of_the_stations_may_upload_two_percent_of_the_public_bytes():
    assert byte_shares(_figures(1, 3))["10000"] == {"stations": 0.01, "public_bytes": 0.02,
                                                    "table_files_and_page": round(3 / 190, 4), "document_parts": None}
    met = targets(_figures(1, 3))
    assert met["10000_bytes_about_their_share"] and met["10000_live_s_le_10"] and met["full_rebuild_le_90_s"]
    # The checkpoint is private: its bytes do not count. A whole document rebuilt per release does.
    assert not targets(_figures(9.5, 3))["10000_bytes_about_their_share"]


def test_the_documents_parts_count_as_public_bytes_beside_the_release_folder():
    figures = _figures(0.1, 3)
    figures["history_publish"]["uploaded_bytes"]["parts"] = 9.9e6  # the whole document, in parts
    figures["batches_published"][0]["uploaded_bytes"]["parts"] = 0.9e6
    assert byte_shares(figures)["10000"] == {"stations": 0.01, "public_bytes": round(4 / 209.9, 4),
                                             "table_files_and_page": round(3 / 190, 4),
                                             "document_parts": round(0.9 / 9.9, 4)}
    assert targets(figures)["10000_bytes_about_their_share"]
    figures["batches_published"][0]["uploaded_bytes"]["parts"] = 9.9e6  # every part again: not met
    assert not targets(figures)["10000_bytes_about_their_share"]


def test_the_bytes_written_are_broken_down_by_table_document_and_listing():
    written = {"d/tables/events/aa.parquet": 300, "d/tables/events/bb.parquet": 200, "d/tables/seats/cc.parquet": 50,
               "d/parts/dd.gz": 40, "d/checkpoints/r.json": 700, "d/checkpoints/segments/s/votes.arrow": 10,
               "d/releases/r1/manifest.json": 400, "d/releases/r1/tables/news.parquet": 5, "d/index.html": 390,
               "d/catalog.json": 360, "d/latest.json": 1}
    out = by_object(written, "d")
    assert out == {"checkpoints/": 710, "tables/events/": 500, "manifest.json": 400, "index.html": 390,
                   "catalog.json": 360, "tables/seats/": 50, "parts/": 40, "tables/news.parquet": 5, "latest.json": 1}
    assert list(out.values()) == sorted(out.values(), reverse=True) and sum(out.values()) == sum(written.values())
