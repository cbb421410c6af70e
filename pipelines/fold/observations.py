"""Observation and news tables: incidents with their current status, and articles with their mentions."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import vocabulary as v
from pipelines.fold import tables as t
from pipelines.fold.build import current_rows, finish
from pipelines.fold.extract import Extracted
from pipelines.fold.versions import Resolution


def observations(ex: Extracted, res: Resolution) -> pa.Table:
    """Each current incident report with the status given by its latest status change (RECEIVED if none)."""
    reports = current_rows(ex, res, v.INCIDENT_REPORTED)
    # The latest live IncidentStatusChanged per incident is the `current` one (versions.resolve).
    changes = current_rows(ex, res, v.INCIDENT_STATUS_CHANGED)
    # Arrow joins refuse list columns (evidence_urls), so look the status up by position instead.
    at = pc.index_in(reports["incident_id"], value_set=changes["incident_id"])
    envelope = ex.envelope.select(["occurred_at", "recorded_at"]).take(reports["ord"])
    cols = {c: reports[c] for c in reports.column_names}
    cols.update(occurred_at=envelope["occurred_at"], recorded_at=envelope["recorded_at"],
                status=pc.coalesce(changes["status"].take(at), pa.scalar(v.INITIAL_INCIDENT_STATUS)),
                status_note=changes["note"].take(at), status_event_id=changes["event_id"].take(at))
    return finish(t.OBSERVATIONS, cols)


def observations_by_division(obs: pa.Table) -> pa.Table:
    """Incidents and occurrences per election × division × category.

    Incidents whose status is RETRACTED (withdrawn by the reporter) are not counted; a report without a
    ``count`` covers one occurrence.
    """
    live = obs.filter(pc.not_equal(obs["status"], "RETRACTED"))
    live = live.append_column("occ", pc.coalesce(live["count"], pa.scalar(1, pa.int32())).cast(pa.int64()))
    grouped = live.group_by(["election_id", "division_id", "category"]).aggregate(
        [("incident_id", "count"), ("occ", "sum")])
    return finish(t.OBSERVATIONS_BY_DIVISION, {
        "election_id": grouped["election_id"], "division_id": grouped["division_id"],
        "category": grouped["category"], "incidents": grouped["incident_id_count"],
        "occurrences": grouped["occ_sum"],
    })


def news(ex: Extracted, res: Resolution) -> tuple[pa.Table, pa.Table]:
    """(news, news_mentions) for the current version of each article; mentions are distinct per article."""
    articles = current_rows(ex, res, v.ARTICLE_PUBLISHED)
    article = finish(t.NEWS, {c: articles[c] for c in articles.column_names})
    mentions = ex.mentions
    if mentions.num_rows:
        mentions = mentions.filter(pa.array(res.current[mentions["ord"].to_numpy()]))
    ids = articles.select(["ord", "article_id", *t.TRACE_COLUMNS])
    joined = mentions.join(ids, keys="ord", join_type="inner")
    distinct = joined.group_by(["article_id", "kind", "value", *t.TRACE_COLUMNS]).aggregate([])
    return article, finish(t.NEWS_MENTIONS, {c: distinct[c] for c in distinct.column_names})
