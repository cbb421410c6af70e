"""Step outputs kept per run: two publish runs at once (a sensor's and a person's) never read each other's.

Dagster's default filesystem IO manager stores an asset's value under its asset key alone, so with two runs of
the publish job at once the release step of one could load the staged snapshot the other just wrote, and publish
it. Here every value lives under ``<storage>/runs/<run id>/<asset key>`` (an output of a step inside the
events-read asset, which has no asset key: ``<storage>/runs/<run id>/steps/<step key>/<output>[/<mapping key>]``),
written to a temporary name and renamed. Steps in other processes of the run find it there.

A run's folder is removed when the run ends (``remove_run_outputs``, from ``dagster_project.run.run_publish``):
the values are needed only while the run's steps pass them on, and the publish job is never re-executed from a
failed step (the next publish starts afresh from the latest release), so nothing reads them afterwards.
"""

import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg


def run_folder(run_id: str, base_dir: str = "") -> Path:
    """Where a run's step outputs are kept: ``<base_dir>/runs/<run id>`` (default ``$DAGSTER_HOME/storage``)."""
    home = os.environ.get("DAGSTER_HOME") or os.path.join(tempfile.gettempdir(), "ballotstream")
    return Path(base_dir or os.path.join(home, "storage")) / "runs" / run_id


def remove_run_outputs(run_id: str, base_dir: str = "") -> None:
    """Remove a finished run's step outputs (a step process killed mid-write may have left a partial file)."""
    shutil.rmtree(run_folder(run_id, base_dir), ignore_errors=True)


class RunScopedIOManager(dg.ConfigurableIOManager):
    """Pickles each output under its run's own folder (``base_dir``: default ``$DAGSTER_HOME/storage``)."""

    base_dir: str = ""

    def _path(self, run_id: str, name: list[str]) -> Path:
        return run_folder(run_id, self.base_dir) / "/".join(name)

    @staticmethod
    def _name(context: dg.OutputContext) -> list[str]:
        if context.has_asset_key:
            return list(context.asset_key.path)
        return ["steps", *context.get_identifier()[1:]]  # step key, output name and mapping key, if any

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        path = self._path(context.run_id, self._name(context))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        with partial.open("wb") as out:
            pickle.dump(obj, out)
        partial.replace(path)

    def load_input(self, context: dg.InputContext) -> Any:
        upstream = context.upstream_output
        path = self._path(upstream.run_id, self._name(upstream))
        if not path.exists():
            what = context.asset_key.to_user_string() if context.has_asset_key else upstream.step_key
            raise dg.Failure(f"{what} was not materialized in this run: materialize it together with what reads it "
                             "(the publish job does)")
        with path.open("rb") as source:
            return pickle.load(source)
