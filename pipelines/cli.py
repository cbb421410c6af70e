"""The ``ballotstream`` command line. Typed errors become one-line messages here and nowhere else."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipelines.errors import BallotstreamError
from pipelines.settings import Settings


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn Ballotstream's typed errors into one-line click errors (exit status 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BallotstreamError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def _settings() -> Settings:
    return Settings.from_env()


def dataset_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--dataset", default=None, help="Dataset name (default: BALLOTSTREAM_DATASET).")(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ballotstream")
def cli() -> None:
    """Ballotstream: election events in Kafka, validated Parquet releases on S3.

    Example:

        ballotstream ingest data/sample/*.jsonl data/sample/*.csv
    """


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["reference", "results", "observations", "news"]),
              help="Accept only this kind of event; others go to the dead-letter topic.")
@_friendly
def ingest(paths: tuple[Path, ...], kind: str | None) -> None:
    """Validate events in JSON Lines / CSV files and produce them to Kafka.

    Rejected records go to the dead-letter topic with file, line and reason; the exit status is 1 when any
    record was rejected.

    Example:

        ballotstream ingest out/sample/reference.jsonl out/sample/results.csv
    """
    from tqdm import tqdm

    from pipelines.ingest.run import ingest as run_ingest

    with tqdm(unit=" records", file=sys.stderr, disable=None, mininterval=0.5) as bar:
        report = run_ingest(list(paths), _settings(), kind=kind, progress=bar.update)
    for line in report.lines():
        click.echo(line)
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} records were not acknowledged by Kafka: "
                                   f"{report.failed[0]}")
    if report.rejected_total:
        sys.exit(1)


@cli.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@_friendly
def sample(out: Path) -> None:
    """Write the sample election (January 2025 Azerbaijani municipal elections) to OUT.

    Facts from the seed article are kept as reported; the station-level detail is generated deterministically
    and marked synthetic.

    Example:

        ballotstream sample out/sample
    """
    from pipelines.sample import build_sample

    summary = build_sample(out)
    click.echo(f"wrote the sample election to {out}: {summary.stations} stations, "
               f"{summary.municipalities} municipalities, {sum(summary.events.values())} events")


@cli.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--stations", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Number of polling stations.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed (same seed, same files).")
@click.option("--faults", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of records to corrupt or correct; the list is written to OUT/faults.jsonl.")
@_friendly
def synth(out: Path, stations: int, seed: int, faults: float) -> None:
    """Generate a synthetic election of any size for tests and benchmarks.

    Example:

        ballotstream synth --stations 10000 --seed 7 --faults 0.01 out/synth
    """
    from pipelines.synth import synthesize

    report = synthesize(out, stations=stations, seed=seed, faults=faults)
    click.echo(f"wrote {sum(report.events.values())} events for {report.stations} stations to {out}")
    if report.faults:
        click.echo("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(report.faults.items())))


@cli.command(name="settings")
@_friendly
def show_settings() -> None:
    """Print every setting, its environment variable and current value (secrets masked).

    Example:

        BALLOTSTREAM_DATASET=test ballotstream settings
    """
    for name, value in _settings().documented().items():
        click.echo(f"{name}={value}")


def main() -> None:
    cli(prog_name="ballotstream")


if __name__ == "__main__":
    main()
