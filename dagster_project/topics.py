"""The event topics as observable source assets: their data version is the end-offset fingerprint."""

import warnings

import dagster as dg

from dagster_project import keys
from dagster_project.resources import BallotstreamResource
from pipelines.kafka import snapshot
from pipelines.release.pipeline import event_topic_names

# Beta in Dagster 1.13; the warning would be printed on every CLI run.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*multi_observable_source_asset.*")


@dg.multi_observable_source_asset(
    name=keys.OBSERVE_TOPICS_OP,
    specs=[dg.AssetSpec(key, group_name=keys.GROUP, description=f"Kafka topic {name} (the event log).")
           for name, key in keys.TOPICS.items()],
)
def event_topics(ballotstream: BallotstreamResource):
    """Observe each event topic's end offsets; a new data version means new events to fold."""
    settings = ballotstream.settings()
    snap = snapshot.capture(settings, event_topic_names(settings))
    for name, key in keys.TOPICS.items():
        topic = settings.topic(name)
        ends = {p: end for (t, p), end in sorted(snap.end.items()) if t == topic}
        version = snapshot.Snapshot({(topic, p): 0 for p in ends}, {(topic, p): e for p, e in ends.items()})
        yield dg.ObserveResult(asset_key=key, data_version=dg.DataVersion(version.fingerprint()), metadata={
            "topic": topic, "events": sum(ends.values()),
            "end_offsets": dg.MetadataValue.json({str(p): e for p, e in ends.items()}),
        })
