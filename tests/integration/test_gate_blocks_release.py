"""Each expectation, broken by a data set made for it, blocks the release: the publish raises, the report is
stored in the bucket with failing rows and their event ids, and `latest.json` still names the good release."""

from __future__ import annotations

import pytest

from pipelines.errors import GateFailed
from pipelines.fold import fold
from pipelines.kafka.admin import delete_topics
from pipelines.kafka.snapshot import Snapshot
from pipelines.release.pipeline import release, stage_tables, validate
from pipelines.release.store import ReleaseStore
from tests.support.factories import small_election
from tests.support.gate_mutations import MUTATIONS
from tests.support.services import make_isolated


def _snapshot(n: int) -> Snapshot:
    """A distinct (synthetic) snapshot per data set, so each stages into its own folder."""
    return Snapshot(start={("test", 0): 0}, end={("test", 0): n})


@pytest.fixture(scope="module")
def published(services, tmp_path_factory):
    settings = make_isolated(services, tmp_path_factory.mktemp("gate") / "staging")
    good = fold(small_election().records)
    staged = stage_tables(settings, _snapshot(0), good)
    manifest = release(settings, staged, validate(settings, staged))
    yield settings, good, manifest
    delete_topics(settings)


@pytest.mark.parametrize("target", list(MUTATIONS), ids=lambda k: f"{k[0]}.{k[1]}")
def test_broken_expectation_blocks_the_release(published, target):
    settings, good, manifest = published
    store = ReleaseStore(settings)
    before = store.latest()[0]
    assert before["release_id"] == manifest["release_id"]
    staged = stage_tables(settings, _snapshot(list(MUTATIONS).index(target) + 1), MUTATIONS[target](good))
    report = validate(settings, staged)
    with pytest.raises(GateFailed, match=f"{target[0]}.{target[1]}") as blocked:
        release(settings, staged, report)
    assert store.latest()[0] == before
    assert [i.release_id for i in store.list() if i.status in ("latest", "published")] == [manifest["release_id"]]
    url = str(blocked.value).rsplit("report: ", 1)[1]
    stored, _ = store.get_json(url.split(f"/{settings.release_bucket}/", 1)[1])
    [check] = [c for c in stored["checks"] if (c["table"], c["name"]) == target]
    assert not check["success"] and check["failing_rows"] >= 1 and check["sample"]
