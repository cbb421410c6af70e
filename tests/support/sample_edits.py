"""Edits of the sample election's results.csv that tests ingest on top of it: one station's tally again, with an
impossible protocol (more ballots cast than registered voters) or as a later, correcting version."""

from __future__ import annotations

from pathlib import Path


def station_rows(sample_dir: Path, *, cast_above_registered: bool, occurred_at: str | None = None
                 ) -> tuple[str, str, list[str]]:
    """(station id, header, that station's rows) of the sample's first station: as the sample has them, or with
    ballots cast 500 above registered voters; ``occurred_at`` makes them a later version (the same content would
    be the same event, a duplicate)."""
    header, *rows = (sample_dir / "results.csv").read_text().splitlines()
    cols = header.split(",")
    station = rows[0].split(",")[cols.index("station_id")]
    out = []
    for row in rows:
        values = row.split(",")
        if values[cols.index("station_id")] == station:
            if cast_above_registered:
                values[cols.index("ballots_cast")] = str(int(values[cols.index("registered_voters")]) + 500)
            if occurred_at:
                values[cols.index("occurred_at")] = occurred_at
            out.append(",".join(values))
    return station, header, out


def cast_above_registered(path: Path, sample_dir: Path) -> Path:
    """Write the sample's first station again with more ballots cast than registered voters; returns ``path``."""
    _, header, rows = station_rows(sample_dir, cast_above_registered=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path
