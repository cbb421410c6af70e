"""Decide, for every event in a snapshot, whether it is current — independently of arrival order.

Rules, applied in this order (docs/events.md; the fold's contract):

1. The same Kafka record read twice (same event_id at the same topic/partition/offset) counts once: the
   repeat is dropped. The same event_id at another position is a ``duplicate``; the copy at the lowest
   position is the canonical one.
2. An event named in another event's ``supersedes`` is ``superseded``, wherever the correction sits in the
   log (a correction read before its target still wins). Chains follow naturally: each link is superseded.
3. A Retraction in effect removes its target event, and every version of the target's (record type, key)
   recorded no later than the Retraction: data must not resurface once retracted. A version recorded after
   the Retraction is new information and counts again. A Retraction that is itself superseded or retracted
   is not in effect (retracting a Retraction restores its target).
4. Of the remaining versions of one (record type, key), the latest by (recorded_at, occurred_at, topic,
   partition, offset) is ``current``; the others are ``outdated`` (e.g. PRELIMINARY once FINAL arrived).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import vocabulary as v
from pipelines.fold.repeats import repeated_values

_ORDER = (("recorded_at", "ascending"), ("occurred_at", "ascending"), ("topic", "ascending"),
          ("partition", "ascending"), ("offset", "ascending"))


@dataclass(frozen=True)
class Retraction:
    """One Retraction event as resolved against the snapshot."""

    ordinal: int
    target_event_id: str
    target_key: str
    reason: str | None
    in_effect: bool
    target_record_type: str | None  # None when the target is not in the snapshot


@dataclass(frozen=True)
class Resolution:
    """The outcome for every ordinal (row of the envelope table)."""

    kept: np.ndarray  # bool: False for repeated reads of one Kafka record
    status: np.ndarray  # int8 index into vocabulary.EVENT_STATUSES

    def status_of(self, rows: np.ndarray) -> pa.Array:
        """Status names of the given ordinals."""
        return pa.array(v.EVENT_STATUSES, type=pa.string()).take(pa.array(self.status[rows], type=pa.int8()))
    current: np.ndarray  # bool: the version the current tables show
    retractions: list[Retraction]


def _mask(n: int, rows: pa.Array | np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[np.asarray(rows, dtype=np.int64)] = True
    return out


def _duplicates(env: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(dropped, duplicate) masks over ordinals."""
    n = env.num_rows
    dropped, duplicate = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    repeated_ids = repeated_values(env["event_id"])
    if not repeated_ids.any():
        return dropped, duplicate
    rows = np.flatnonzero(repeated_ids)
    sub = env.take(rows).select(["event_id", "topic", "partition", "offset"]).to_pylist()
    groups: dict[str, list[tuple[tuple[str, int, int], int]]] = {}
    for row, r in zip(rows.tolist(), sub, strict=True):
        groups.setdefault(r["event_id"], []).append(((r["topic"], r["partition"], r["offset"]), row))
    for copies in groups.values():
        copies.sort()
        seen = {copies[0][0]}
        for pos, row in copies[1:]:
            if pos in seen:
                dropped[row] = True
            else:
                seen.add(pos)
                duplicate[row] = True
    return dropped, duplicate


def _retractions(env: pa.Table, content: pa.Table, canonical: np.ndarray, live: np.ndarray) -> list[Retraction]:
    """Resolve each Retraction: is its target in the snapshot, and is it in effect?

    ``live`` marks canonical events that are not superseded: only those can be in effect. Targets are
    looked up among all canonical events, so citing a superseded version still retracts the thing.
    """
    rows = content.to_pylist()
    if not rows:
        return []
    targets = pa.array(sorted({r["target_event_id"] for r in rows}), type=pa.string())
    found = np.flatnonzero(pc.is_in(env["event_id"], value_set=targets).to_numpy(zero_copy_only=False)
                           & canonical)
    target_type = dict(zip(env["event_id"].take(found).to_pylist(), env["record_type"].take(found).to_pylist(),
                           strict=True))
    event_ids = env["event_id"].take(pa.array([r["ord"] for r in rows])).to_pylist()
    retracted_by: dict[str, list[str]] = {}
    for eid, r in zip(event_ids, rows, strict=True):
        if live[r["ord"]]:
            retracted_by.setdefault(r["target_event_id"], []).append(eid)

    # Retractions may target Retractions; resolve with memoised recursion (a cycle counts as in effect).
    memo: dict[str, bool] = {}

    def in_effect(event_id: str, seen: frozenset[str]) -> bool:
        if event_id not in memo:
            if event_id in seen:
                return True
            memo[event_id] = not any(in_effect(by, seen | {event_id}) for by in retracted_by.get(event_id, ()))
        return memo[event_id]

    return [
        Retraction(ordinal=r["ord"], target_event_id=r["target_event_id"], target_key=r["target_key"],
                   reason=r["reason"], in_effect=bool(live[r["ord"]]) and in_effect(eid, frozenset()),
                   target_record_type=target_type.get(r["target_event_id"]))
        for eid, r in zip(event_ids, rows, strict=True)
    ]


def _retracted(env: pa.Table, retractions: list[Retraction], canonical: np.ndarray) -> np.ndarray:
    n = env.num_rows
    effective = [r for r in retractions if r.in_effect and r.target_record_type is not None]
    if not effective:
        return np.zeros(n, dtype=bool)
    targets = pa.array(sorted({r.target_event_id for r in effective}), type=pa.string())
    out = pc.is_in(env["event_id"], value_set=targets).to_numpy(zero_copy_only=False) & canonical
    hit_rows = np.flatnonzero(out)
    key_of = dict(zip(env["event_id"].take(hit_rows).to_pylist(), env["key"].take(hit_rows).to_pylist(),
                      strict=True))
    recorded = env["recorded_at"]
    # Key-wide tombstones only for ordinary targets: retracting a Retraction just cancels that one event.
    stones = [(r.target_record_type, key_of[r.target_event_id], recorded[r.ordinal].value)
              for r in effective if r.target_record_type != v.RETRACTION]
    if stones:
        tomb = pa.table({"record_type": pa.array([s[0] for s in stones], pa.string()),
                         "key": pa.array([s[1] for s in stones], pa.string()),
                         "until": pa.array([s[2] for s in stones], type=recorded.type)})
        tomb = tomb.group_by(["record_type", "key"]).aggregate([("until", "max")])
        idx = env.select(["record_type", "key", "recorded_at"]).append_column("row", pa.array(np.arange(n)))
        hit = idx.join(tomb, keys=["record_type", "key"], join_type="inner")
        hit = hit.filter(pc.less_equal(hit["recorded_at"], hit["until_max"]))
        out |= _mask(n, hit["row"].to_numpy())
    return out & canonical


def resolve(env: pa.Table, retraction_content: pa.Table) -> Resolution:
    """Resolve every event's status.

    Args:
        env: the envelope table, row i = ordinal i.
        retraction_content: the Retraction buffer (ord, target_event_id, target_key, reason).

    Returns:
        Per-ordinal kept/status/current arrays and the resolved Retractions.
    """
    n = env.num_rows
    dropped, duplicate = _duplicates(env)
    canonical = ~dropped & ~duplicate
    sup = env["supersedes_event_id"].filter(pa.array(canonical)).drop_null()
    superseded = pc.is_in(env["event_id"], value_set=pc.unique(sup)).to_numpy(zero_copy_only=False) & canonical \
        if len(sup) else np.zeros(n, dtype=bool)
    live = canonical & ~superseded
    retractions = _retractions(env, retraction_content, canonical, live)
    retracted = _retracted(env, retractions, canonical)
    eligible = live & ~retracted

    is_retraction = pc.equal(env["record_type"], v.RETRACTION).to_numpy(zero_copy_only=False)
    versioned = eligible & ~is_retraction
    rows = np.flatnonzero(versioned)
    current = np.zeros(n, dtype=bool)
    if len(rows):
        # A key with one version is current as it is; only keys with several are sorted (usually a handful).
        several = repeated_values(env["key"], rows)
        current[rows[~several]] = True
        rows = rows[several]
    if len(rows):
        sub = env.select(["record_type", "key", "recorded_at", "occurred_at", "topic", "partition", "offset"]) \
            .take(rows)
        order = pc.sort_indices(sub, sort_keys=[("record_type", "ascending"), ("key", "ascending"), *_ORDER])
        ordered_rows = rows[order.to_numpy()]
        rt = sub["record_type"].take(order)
        key = sub["key"].take(order)
        # The last row of each (record_type, key) run is the latest version.
        differs = pc.or_(pc.not_equal(rt[1:], rt[:-1]), pc.not_equal(key[1:], key[:-1]))
        last = np.append(differs.to_numpy(zero_copy_only=False), True)
        current[ordered_rows[last]] = True
    current |= eligible & is_retraction

    # Status codes index EVENT_STATUSES; later assignments take precedence.
    status = np.full(n, v.EVENT_STATUSES.index(v.STATUS_OUTDATED), dtype=np.int8)
    status[current] = v.EVENT_STATUSES.index(v.STATUS_CURRENT)
    status[superseded] = v.EVENT_STATUSES.index(v.STATUS_SUPERSEDED)
    status[retracted] = v.EVENT_STATUSES.index(v.STATUS_RETRACTED)
    status[duplicate | dropped] = v.EVENT_STATUSES.index(v.STATUS_DUPLICATE)
    return Resolution(kept=~dropped, status=status, current=current, retractions=retractions)
