"""What a publish's announcement step looks at, against the real S3 and Kafka: only the releases after the newest
announced one (a few S3 reads however long the chain), each announced once; a repair still looks at every
release."""

from __future__ import annotations

from typing import Any

from pipelines.kafka.subscribe import subscribe
from pipelines.release.announce import announce_pending
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings
from tests.support.releases import delete_dataset


class _CountingS3:
    """The real client, counting get_object calls."""

    def __init__(self, s3: Any) -> None:
        self._s3, self.gets = s3, 0

    def get_object(self, **kw: Any) -> Any:
        self.gets += 1
        return self._s3.get_object(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def _publish(store: ReleaseStore, release_id: str, previous: str | None) -> None:
    """A release in the chain as far as announcing is concerned: its manifest, then latest.json."""
    store.put_json(store.release_prefix(release_id) + "manifest.json", {
        "dataset": store.dataset, "release_id": release_id, "previous_release": previous,
        "tables": {"seats": {"rows": 1}}, "gate": {"passed": True}})
    store.put_json(store.latest_key, {"release_id": release_id})


def _announced(settings: Settings) -> list[str]:
    return [e["value"]["release_id"] for e in subscribe(settings, "releases", from_beginning=True)]


def test_a_publish_announces_only_after_the_newest_announced_release_and_a_repair_finds_the_rest(isolated):
    counting = _CountingS3(ReleaseStore(isolated).s3)
    store = ReleaseStore(isolated, s3=counting)
    try:
        ids = [f"20300505T0000{i:02d}.000000Z-r{i:02d}" for i in range(12)]
        for i, rid in enumerate(ids[:10]):
            _publish(store, rid, ids[i - 1] if i else None)
        # The oldest release is left unmarked on purpose: a publish only looks after the newest marked one.
        for rid in ids[1:10]:
            store.put_json(store.announced_key(rid), {"release_id": rid, "topic": "elsewhere", "offset": 0})
        _publish(store, ids[10], ids[9])
        counting.gets = 0
        assert announce_pending(isolated, store) == [(ids[10], "announced")]
        # latest.json, then per release a marker and a manifest, for the new one and the one before only.
        assert counting.gets <= 4, counting.gets
        assert announce_pending(isolated, store) == []
        _publish(store, ids[11], ids[10])
        assert announce_pending(isolated, store) == [(ids[11], "announced")]
        assert _announced(isolated) == [ids[10], ids[11]]

        assert announce_pending(isolated, store, takeover_after_s=0) == [(ids[0], "announced")]
        assert _announced(isolated) == [ids[10], ids[11], ids[0]]
        assert store.announced(ids[0])
    finally:
        delete_dataset(isolated, isolated.dataset)


def test_an_announcement_after_the_marked_one_is_found_on_the_topic_not_repeated(isolated):
    from pipelines.release.announce import announce_release, release_published_event

    store = ReleaseStore(isolated)
    try:
        _publish(store, "r1", None)
        assert announce_pending(isolated, store) == [("r1", "announced")]
        _publish(store, "r2", "r1")
        # On the topic after r1's announcement, though nobody marked it (what a pre-claim publisher could leave).
        manifest = store.manifest("r2")
        assert manifest is not None
        announce_release(isolated, release_published_event(manifest, store.manifest_url("r2")))
        assert announce_pending(isolated, store) == [("r2", "already on the topic")]
        assert _announced(isolated) == ["r1", "r2"]
    finally:
        delete_dataset(isolated, isolated.dataset)
