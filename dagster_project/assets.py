# No `from __future__ import annotations`: Dagster reads the context annotation at definition time.
"""Assets: the folded tables (one asset each, from one fold) and the release downstream of all of them."""


from collections.abc import Iterator
from typing import Any

import dagster as dg

from dagster_project import keys
from dagster_project.resources import BallotstreamResource
from pipelines.fold.tables import KEYS, TABLE_NAMES
from pipelines.release import pipeline as core
from pipelines.release.manifest import TABLE_DESCRIPTIONS


@dg.multi_asset(
    outs={
        "staged_snapshot": dg.AssetOut(key=keys.STAGED, description="The snapshot's offsets and its staged files."),
        **{name: dg.AssetOut(key=keys.TABLES[name], description=TABLE_DESCRIPTIONS.get(name))
           for name in TABLE_NAMES},
    },
    group_name=keys.GROUP,
    description="Capture the topics' end offsets, read every event up to them, and fold them into tables.",
)
def folded_tables(context: dg.AssetExecutionContext, ballotstream: BallotstreamResource) -> Iterator[dg.Output[Any]]:
    settings = ballotstream.settings()
    staged = core.stage(settings)
    snapshot = {f"{t}[{p}]": f"{staged.snapshot.start[(t, p)]}..{end}" for (t, p), end in staged.snapshot.end.items()}
    yield dg.Output(staged, output_name="staged_snapshot", metadata={
        "events": staged.snapshot.total(),
        "snapshot": dg.MetadataValue.json(snapshot),
        "fingerprint": staged.snapshot.fingerprint(),
        **{k: round(v, 3) for k, v in staged.timings.items()},
    })
    for name, f in staged.files.items():
        yield dg.Output(f, output_name=name, metadata={
            "dagster/row_count": f.rows,
            "bytes": f.bytes,
            "sha256": f.sha256,
            "key": ", ".join(KEYS[name]),
            "snapshot_fingerprint": staged.snapshot.fingerprint(),
            "staged_path": str(f.path),
        })


@dg.asset(
    key=keys.RELEASE,
    ins={"staged": dg.AssetIn(key=keys.STAGED)},
    deps=list(keys.TABLES.values()),
    group_name=keys.GROUP,
)
def release(context: dg.AssetExecutionContext, ballotstream: BallotstreamResource, staged: core.Staged
            ) -> dg.MaterializeResult:
    """The public release: Parquet tables, manifest, datapackage and validation report on S3, then latest.json.

    Runs only when every table's blocking Great Expectations check passed.
    """
    settings = ballotstream.settings()
    report = core.load_gate_report(settings, staged)
    manifest = core.release(settings, staged, report, run_id=context.run_id)

    return dg.MaterializeResult(metadata={
        "release_id": manifest["release_id"],
        "manifest_url": dg.MetadataValue.url(
            settings.public_url(f"{staged.dataset}/releases/{manifest['release_id']}/manifest.json")),
        "rows": dg.MetadataValue.json({n: t["rows"] for n, t in manifest["tables"].items()}),
        "sha256": dg.MetadataValue.json({n: t["sha256"] for n, t in manifest["tables"].items()}),
        "previous_release": manifest["previous_release"] or "",
        "upload_s": round(staged.timings.get("upload_s", 0.0), 3),
    })
