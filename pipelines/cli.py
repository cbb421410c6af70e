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


def _settings(dataset: str | None = None) -> Settings:
    settings = Settings.from_env()
    if dataset:
        from dataclasses import replace

        settings = replace(settings, dataset=dataset)
        settings.validate()
    return settings


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
@click.option("--format", "fmt", type=click.Choice(["auto", "openelections", "csv"]), default="auto",
              show_default=True,
              help="auto: JSON Lines / tally CSV by suffix; openelections: OpenElections precinct CSVs; "
                   "csv: any results CSV read through --mapping.")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML column mapping for --format csv (see README, Input formats).")
@_friendly
def ingest(paths: tuple[Path, ...], kind: str | None, fmt: str, mapping: Path | None) -> None:
    """Validate events in JSON Lines / CSV files and produce them to Kafka.

    Rejected records go to the dead-letter topic with file, line and reason (the first few are printed); the
    exit status is 1 when any record was rejected. OpenElections files (--format openelections) and other
    results CSVs (--format csv --mapping MAP.yaml) are converted to events first.

    Example:

        ballotstream ingest out/sample/reference.jsonl out/sample/results.csv

        ballotstream ingest --format openelections 20201103__pa__general__forest__precinct.csv
    """
    from tqdm import tqdm

    from pipelines.ingest.run import ingest as run_ingest

    if (fmt == "csv") != (mapping is not None):
        raise click.UsageError("--mapping goes with --format csv, and --format csv needs it")
    with tqdm(unit=" records", file=sys.stderr, disable=None, mininterval=0.5) as bar:
        report = run_ingest(list(paths), _settings(), kind=kind, progress=bar.update, fmt=fmt, mapping=mapping)
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
    from pipelines.generator.sample import build_sample

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
@click.option("--contests", type=click.IntRange(min=1), default=3, show_default=True,
              help="Contests per station: municipal council, regional party list, national referendum, then "
                   "national party lists and multi-option questions in turn.")
@click.option("--selections", type=click.IntRange(min=2), default=None,
              help="Candidates per council, parties per list, options per question (the referendum keeps yes/no); "
                   "default 10-15 candidates, 4 parties, 3 options.")
@_friendly
def synth(out: Path, stations: int, seed: int, faults: float, contests: int, selections: int | None) -> None:
    """Generate a synthetic election of any size for tests and benchmarks.

    Example:

        ballotstream synth --stations 10000 --seed 7 --faults 0.01 --contests 5 --selections 10 out/synth
    """
    from pipelines.generator.synth import synthesize

    report = synthesize(out, stations=stations, seed=seed, faults=faults, contests=contests, selections=selections)
    click.echo(f"wrote {sum(report.events.values())} events for {report.stations} stations and "
               f"{report.contests} contests to {out}")
    if report.faults:
        click.echo("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(report.faults.items())))


def _print_gate_failure(exc: Any) -> None:
    report = getattr(exc, "report", None)
    if report is None:
        return
    for line in report.summary_lines():
        if not line.startswith("ok"):
            click.echo(line, err=True)
    for check in report.blocking_failures:
        for row in check.sample[:3]:
            click.echo(f"  sample {check.qualified_name}: {row}", err=True)


@cli.command()
@dataset_option
@click.option("--force", is_flag=True, help="Publish even when the snapshot equals the latest release's.")
@click.option("--full", is_flag=True,
              help="Read every event from offset 0 instead of resuming from the latest release's checkpoint.")
@click.option("--watch", is_flag=True,
              help="Keep publishing: check every --interval and publish whenever new events arrived.")
@click.option("--interval", default="30s", show_default=True, help="With --watch: time between checks (s, m, h).")
@click.option("--max-publishes", type=click.IntRange(min=1), help="With --watch: stop after this many releases.")
@click.option("--max-checks", type=click.IntRange(min=1), help="With --watch: stop after this many checks.")
@_friendly
def publish(dataset: str | None, force: bool, full: bool, watch: bool, interval: str, max_publishes: int | None,
            max_checks: int | None) -> None:
    """Fold the event log, run the Great Expectations gate and publish a release (the Dagster job, in-process).

    Prints the release id, rows per table, the checks' outcome and the download URLs. When a blocking check
    fails, nothing is published, latest stays as it was, and the validation report is printed and stored.

    A publish resumes from the checkpoint the latest release left and reads only the events after it; the
    tables are the same as from a full rebuild. --full reads everything from offset 0 (a missing, unreadable
    or outdated checkpoint does so too, and the output says why).

    With --watch it keeps going: every --interval it compares the event topics' end offsets with the latest
    release's and publishes when they moved, printing one line per release or failure (a failure is reported and
    the watch goes on). Ctrl-C stops it.

    Example:

        ballotstream publish --dataset az-municipal-2025

        ballotstream publish --watch --interval 30s

        ballotstream publish --full --force
    """
    from dagster_project.run import run_publish
    from pipelines.errors import GateFailed
    from pipelines.release.store import ReleaseStore

    settings = _settings(dataset)
    if watch:
        _watch(settings, interval, max_publishes, max_checks)
        return
    if max_publishes or max_checks:
        raise click.UsageError("--max-publishes and --max-checks go with --watch")
    try:
        outcome = run_publish(settings, force=force, full=full)
    except GateFailed as exc:
        _print_gate_failure(exc)
        raise
    if outcome.manifest is None:
        click.echo(outcome.skipped)
        return
    store = ReleaseStore(settings)
    manifest = outcome.manifest
    click.echo(f"published release {manifest['release_id']} of {manifest['dataset']} (run {outcome.run_id})")
    click.echo(f"read: {manifest['read']['events_read']:,} events, {manifest['read']['from']}")
    # Two tables a line and one URL pattern, so `make demo` fits on one screen.
    cells = [f"{name:<26}{table['rows']:>12,} rows" for name, table in manifest["tables"].items()]
    for i in range(0, len(cells), 2):
        click.echo("  " + "    ".join(cells[i:i + 2]))
    checks = manifest["gate"]["checks"]
    click.echo(f"gate: {sum(c['success'] for c in checks)}/{len(checks)} checks passed")
    # A large table is several files outside the release folder: the pattern would name none of them.
    split = [f"{name} ({len(t['files'])} files)" for name, t in manifest["tables"].items() if not t.get("path")]
    click.echo(f"tables:   {settings.public_url(store.release_prefix(manifest['release_id']))}tables/<table>.parquet"
               + (f"; in several files, listed in the manifest: {', '.join(split)}" if split else ""))
    click.echo(f"manifest: {store.manifest_url(manifest['release_id'])}")
    click.echo(f"latest:   {settings.public_url(store.latest_key)}")
    click.echo(f"run log:  {outcome.log_file}")


def _watch(settings: Settings, interval: str, max_publishes: int | None, max_checks: int | None) -> None:
    from dagster_project.run import run_publish, warm_up
    from pipelines.release.gc import parse_grace
    from pipelines.release.watch import watch

    interval_s = parse_grace(interval).total_seconds()
    warm_up(settings)
    click.echo(f"watching {settings.dataset}: checking every {interval} (Ctrl-C stops)")
    try:
        summary = watch(settings, lambda: run_publish(settings).manifest, interval_s=interval_s,
                        echo=lambda line: click.echo(line), max_publishes=max_publishes, max_checks=max_checks)
    except KeyboardInterrupt:
        click.echo("stopped")
        return
    click.echo(f"stopped after {summary.checks} checks: {summary.published} published, {summary.failed} failed")


@cli.command()
@dataset_option
@_friendly
def releases(dataset: str | None) -> None:
    """List a dataset's releases, newest first, with their status.

    Example:

        ballotstream releases --dataset az-municipal-2025
    """
    from pipelines.release.store import ReleaseStore

    infos = ReleaseStore(_settings(dataset)).list()
    if not infos:
        click.echo("no releases yet")
    for info in infos:
        gate = "" if info.gate_passed is None else ("gate passed" if info.gate_passed else "gate FAILED")
        rows = "" if info.rows is None else f"{info.rows:,} rows"
        click.echo(f"{info.release_id}  {info.status:12}  {info.created_at or '':25}  {rows:>14}  {gate}")


@cli.command()
@dataset_option
@_friendly
def status(dataset: str | None) -> None:
    """How far the latest release is behind the event log, the last release, the last publish the gate blocked
    since, and withheld units.

    Events behind: the event topics' end offsets now minus those in the latest release's manifest. Seconds
    behind: how long the oldest event not yet released has been in the log (its Kafka timestamp).

    Example:

        ballotstream status --dataset az-municipal-2025
    """
    from pipelines.release.status import status as status_of

    st = status_of(_settings(dataset))
    waited = "" if st.seconds_behind is None else f", {st.seconds_behind:,.0f} s behind"
    since = f" (oldest unreleased event at {st.oldest_unreleased_at.isoformat(timespec='seconds')})" \
        if st.oldest_unreleased_at else ""
    click.echo(f"dataset:      {st.dataset}")
    click.echo(f"lag:          {st.events_behind:,} events{waited}{since}")
    for (topic, partition), n in sorted(st.behind.items()):
        click.echo(f"              {topic}[{partition}]: {n:,} events not released")
    last = st.last_release
    click.echo("last release: none yet" if last is None else
               f"last release: {last.release_id} at {last.created_at}, {last.rows:,} rows, gate "
               f"{'passed' if last.gate_passed else 'FAILED'} ({last.checks_passed}/{last.checks} checks)")
    failure = st.last_failure
    click.echo("last failure: none since the last release" if failure is None else
               f"last failure: run {failure.run_id} at {failure.at.isoformat(timespec='seconds')}, blocked by "
               f"{', '.join(failure.blocking_failed) or 'the gate'}; report: {failure.url}")
    click.echo(f"withheld:     {st.withheld_units} units ({st.withholding})")


@cli.command()
@dataset_option
@click.option("--repair", is_flag=True, help="Announce them (without it, only list them).")
@click.option("--stale-after", default="30s", show_default=True,
              help="Take over another run's claim to announce once older than this (0s: no publisher is running).")
@_friendly
def announce(dataset: str | None, repair: bool, stale_after: str) -> None:
    """Find published releases whose ReleasePublished announcement is missing (a publisher died after switching
    latest.json) and, with --repair, announce each exactly once, oldest first.

    Example:

        ballotstream announce --repair --dataset az-municipal-2025
    """
    from pipelines.release.announce import announce_pending, pending_releases
    from pipelines.release.gc import parse_grace
    from pipelines.release.store import ReleaseStore

    settings = _settings(dataset)
    store = ReleaseStore(settings)
    if not repair:
        pending = pending_releases(store)
        for manifest in pending:
            click.echo(f"not announced: {manifest['release_id']}")
        click.echo(f"{len(pending)} published releases of {store.dataset} not announced"
                   + (" (ballotstream announce --repair announces them)" if pending else ""))
        return
    done = announce_pending(settings, store, takeover_after_s=parse_grace(stale_after).total_seconds())
    for release_id, outcome in done:
        click.echo(f"{release_id}: {outcome}")
    left = sum(outcome == "claimed by another run" for _, outcome in done)
    click.echo(f"{len(done)} releases of {store.dataset} were pending; "
               + (f"{left} claimed by a run younger than {stale_after} (run again later)" if left
                  else "every published release is announced"))


@cli.command()
@dataset_option
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@click.option("--grace", default="1h", show_default=True,
              help="Keep anything younger than this (s, m, h, d); must exceed the longest publish.")
@_friendly
def gc(dataset: str | None, dry_run: bool, grace: str) -> None:
    """Remove partial release folders (no manifest), stale staging folders, checkpoints other than the latest
    release's, and table files no release lists, when older than the grace period.

    Never removes a release that has a manifest, nor anything a manifest references.

    Example:

        ballotstream gc --dry-run --grace 1h
    """
    from pipelines.release.gc import collect, parse_grace

    settings = _settings(dataset)
    done = collect(settings, parse_grace(grace), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for release_id in done.release_folders:
        click.echo(f"{verb} partial release {release_id}")
    for folder in done.staging_folders:
        click.echo(f"{verb} staging folder {folder}")
    click.echo(f"{verb} {len(done.release_folders)} partial release folders ({done.objects} objects), "
               f"{len(done.staging_folders)} staging folders, {done.checkpoint_objects} checkpoint objects and "
               f"{done.shared_files} shared files (table files, document parts) no release lists; kept "
               f"{done.kept_young} folders and {done.kept_young_shared_files} unlisted shared files younger than "
               f"{grace}")


@cli.command()
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest event (when the group has no position).")
@click.option("--follow", is_flag=True, help="Keep waiting for new events instead of stopping at the end.")
@click.option("--group", help="Consumer group: remembers the position, so the next run resumes there.")
@click.option("--max-events", type=click.IntRange(min=1), help="Stop after this many events.")
@_friendly
def subscribe(topic: str, from_beginning: bool, follow: bool, group: str | None, max_events: int | None) -> None:
    """Print a topic's events as JSON lines, decoded through the schema registry.

    TOPIC is a declared name (reference, results, observations, news, deadletter, releases) or a full topic name.

    Example:

        ballotstream subscribe results --from-beginning --group my-dashboard --max-events 10
    """
    import json

    from pipelines.kafka.subscribe import subscribe as events_of

    events = events_of(_settings(), topic, from_beginning=from_beginning, follow=follow, group=group)
    try:
        for n, event in enumerate(events, start=1):
            click.echo(json.dumps(event, ensure_ascii=False, sort_keys=True))
            if max_events is not None and n >= max_events:
                break
    finally:
        events.close()  # commits the group's position


@cli.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path(".state/sample"),
              show_default=True, help="Where the sample election's files are written.")
@_friendly
def demo(out: Path) -> None:
    """Write the sample election, ingest it, publish a release and say where to download it.

    Run after `make up` (which `make demo` does first).

    Example:

        ballotstream demo --out .state/sample
    """
    from pipelines.generator.sample import build_sample
    from pipelines.ingest.run import ingest as run_ingest

    settings = _settings()
    summary = build_sample(out)
    click.echo(f"sample election: {summary.stations} stations in {summary.municipalities} municipalities -> {out}")
    report = run_ingest(sorted(p for p in out.iterdir() if p.suffix in (".jsonl", ".csv")), settings)
    for line in report.lines():
        click.echo(line)
    if report.rejected_total or report.failed:
        raise click.ClickException("the sample election did not ingest cleanly")
    ctx = click.get_current_context()
    ctx.invoke(publish, dataset=None, force=False)
    base = settings.public_url(settings.dataset)
    click.echo(f"\ncatalog page:    {base}/index.html")
    click.echo(f"latest release: {base}/latest.json")


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
