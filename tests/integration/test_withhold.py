"""Withhold, don't freeze: with BALLOTSTREAM_GATE_WITHHOLD on, one station's impossible protocol is withheld and the
rest of the release is published; a correction brings it back; with the setting off the release is blocked."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from datetime import datetime

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dagster_project.run import run_publish
from pipelines.errors import GateFailed
from pipelines.generator.sample import build_sample
from pipelines.ingest.run import ingest
from pipelines.release import cdf
from pipelines.release.status import withholding
from pipelines.release.store import ReleaseStore
from tests.support.sample_edits import station_rows

# What a tally with ballots cast = registered + 500 fails (cast and valid + invalid no longer agree either).
RULES = ("station_turnout.cast_le_registered", "station_turnout.valid_plus_invalid_eq_cast",
         "station_turnout.turnout_in_range")



def _table(store: ReleaseStore, manifest: dict, name: str):
    key = store.release_prefix(manifest["release_id"]) + manifest["tables"][name]["path"]
    body = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    import pyarrow as pa

    return pq.read_table(pa.BufferReader(body))


def _document_of_published_tables(store: ReleaseStore, manifest: dict) -> None:
    """The release's NIST document is the one its own tables give (not one of the tables staged before withholding,
    which the gate step started building beside the gate)."""
    import pyarrow as pa

    (key,) = manifest["documents"]
    body = b"".join(store.s3.get_object(Bucket=store.bucket, Key=part["key"])["Body"].read()
                    for part in manifest["documents"][key]["parts"])
    generated = json.loads(gzip.decompress(body))["GeneratedDate"]
    tables = {n: pa.concat_tables(pq.read_table(pa.BufferReader(store.s3.get_object(Bucket=store.bucket, Key=k)[
        "Body"].read())) for k in store.table_keys(manifest, n)) for n in cdf.TABLES if n in manifest["tables"]}
    rebuilt, _ = cdf.release_documents(tables, generated_at=datetime.fromisoformat(generated))
    assert rebuilt[key].body == body


def test_an_impossible_tally_is_withheld_then_restored_by_a_correction(isolated, tmp_path):
    sample = tmp_path / "sample"
    build_sample(sample)
    station, header, bad = station_rows(sample, cast_above_registered=True)
    (tmp_path / "bad.csv").write_text("\n".join([header, *bad]) + "\n")
    assert ingest([*sorted(sample.iterdir()), tmp_path / "bad.csv"], isolated).rejected_total == 0
    settings = replace(isolated, gate_withhold=",".join(RULES))
    store = ReleaseStore(settings)

    held = run_publish(settings)
    manifest = held.manifest
    assert manifest is not None and store.latest()[0]["release_id"] == manifest["release_id"]
    withheld = _table(store, manifest, "withheld").to_pylist()
    assert {r["station_id"] for r in withheld} == {station}
    assert {r["rule"] for r in withheld} == set(RULES) and all(r["event_id"] for r in withheld)
    units = {(r["contest_id"], r["station_id"]) for r in withheld}
    assert manifest["withheld"]["units"] == len(units) >= 1
    turnout = _table(store, manifest, "station_turnout")
    assert station not in turnout["station_id"].to_pylist() and turnout.num_rows > 1000
    results = _table(store, manifest, "station_results")
    assert station not in pc.unique(results["station_id"].cast("string")).to_pylist()
    summary = _table(store, manifest, "contest_summary")
    assert sum(summary["stations_withheld"].to_pylist()) == len(units)
    assert held.checks[("station_turnout", "cast_le_registered")] == (False, "WARN")
    assert held.report.result("station_turnout", "cast_le_registered").withheld == len(units)
    assert all(passed for (passed, severity) in held.checks.values() if severity == "ERROR")
    assert withholding(settings, manifest)[0] == len(units)
    _document_of_published_tables(store, manifest)

    _, header, good = station_rows(sample, cast_above_registered=False, occurred_at="2025-01-30T09:00:00+04:00")
    (tmp_path / "fixed.csv").write_text("\n".join([header, *good]) + "\n")
    assert ingest([tmp_path / "fixed.csv"], settings).rejected_total == 0
    fixed = run_publish(settings)
    assert fixed.manifest is not None and fixed.manifest["withheld"] == {"units": 0, "rules": {}}
    assert _table(store, fixed.manifest, "withheld").num_rows == 0
    assert station in _table(store, fixed.manifest, "station_turnout")["station_id"].to_pylist()
    assert fixed.checks[("station_turnout", "cast_le_registered")] == (True, "ERROR")


def test_without_the_setting_the_impossible_tally_blocks_the_release(isolated, tmp_path):
    sample = tmp_path / "sample"
    build_sample(sample)
    _, header, bad = station_rows(sample, cast_above_registered=True)
    (tmp_path / "bad.csv").write_text("\n".join([header, *bad]) + "\n")
    assert ingest([*sorted(sample.iterdir()), tmp_path / "bad.csv"], isolated).rejected_total == 0
    with pytest.raises(GateFailed, match="station_turnout.cast_le_registered"):
        run_publish(isolated)
    assert ReleaseStore(isolated).latest()[0] is None
    # Configuring only one of the rules it fails is not enough: the others still block.
    with pytest.raises(GateFailed, match="valid_plus_invalid_eq_cast"):
        run_publish(replace(isolated, gate_withhold=RULES[0]))
