"""Release ids sort by time at sub-second precision and never collide; gc's grace periods parse strictly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines.errors import ConfigError
from pipelines.kafka.snapshot import Snapshot
from pipelines.release.gc import parse_grace
from pipelines.release.manifest import release_id_for


def _snapshot() -> Snapshot:
    return Snapshot(start={("t", 0): 0}, end={("t", 0): 10})


def test_release_ids_of_one_snapshot_in_one_microsecond_differ():
    now = datetime(2025, 1, 1, 12, 0, 0, 5, tzinfo=UTC)
    ids = {release_id_for(_snapshot(), now) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("20250101T120000.000005Z-" + _snapshot().fingerprint() + "-") for i in ids)


def test_release_ids_sort_by_time_below_the_second():
    t0 = datetime(2025, 1, 1, 12, 0, 0, 999_000, tzinfo=UTC)
    times = [t0 + timedelta(microseconds=d) for d in (0, 1, 999, 1_000, 1_001, 10**6, 10**7)]
    ids = [release_id_for(_snapshot(), t, nonce="ffffffff" if i % 2 else "00000000") for i, t in enumerate(times)]
    assert sorted(ids) == ids


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600),
                                               ("2d", 172800), ("0s", 0), ("1.5h", 5400)])
def test_grace_periods(text, seconds):
    assert parse_grace(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "h", "1w", "-1h", "1 hour"])
def test_bad_grace_periods_name_the_value(text):
    with pytest.raises(ConfigError, match="grace period"):
        parse_grace(text)
