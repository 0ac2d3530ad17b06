"""What the CLI and the page show: per group and partition, lag in records and seconds, Burrow's status, and the
trend, from the latest snapshot judged against the persisted samples before it."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from aiokafka import TopicPartition

from fivecogs_ops.lag.estimate import Estimate, from_record, interpolated, tables
from fivecogs_ops.lag.rules import Observation, Status, Trend, Verdict, group_status, partition_status, trend
from fivecogs_ops.lag.sampling import DEFAULT_PREFIX, Sample, Snapshot, collect, record_times
from fivecogs_ops.lag.store import SampleStore
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.kafka_admin import Member
from fivecogs_shared.lag import EndOffsetTable

HOUR = 3600.0
# (topic, partition, offset) -> the record's timestamp
RecordTimes = Mapping[tuple[str, int, int], float]


@dataclass(frozen=True)
class PartitionReport:
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    lag_seconds: float | None
    estimate: str
    status: Status
    reason: str
    trend: Trend
    samples: int  # in the window: fewer than 2 cannot tell movement


@dataclass(frozen=True)
class GroupReport:
    group: str
    state: str
    members: tuple[Member, ...]
    status: Status
    reason: str
    lag: int
    lag_seconds: float | None
    trend: Trend
    partitions: list[PartitionReport]
    series: list[tuple[float, int]]  # the group's total lag per sample, oldest first


@dataclass(frozen=True)
class Report:
    time: float
    window: float
    groups: list[GroupReport]

    @property
    def status(self) -> Status:
        return max((g.status for g in self.groups), default=Status.OK)

    def needs_second_look(self) -> bool:
        return any(p.lag > 0 and p.samples < 2 for g in self.groups for p in g.partitions)

    def to_json(self, series: bool = False) -> dict[str, Any]:
        return {
            "time": self.time,
            "window_seconds": self.window,
            "status": self.status.name,
            "groups": [_group_json(g, series) for g in self.groups],
        }


def _group_json(group: GroupReport, series: bool) -> dict[str, Any]:
    body = asdict(group)
    body["status"] = group.status.name
    body["trend"] = _trend_json(group.trend)
    body["partitions"] = [
        {**asdict(p), "status": p.status.name, "trend": _trend_json(p.trend)} for p in group.partitions
    ]
    if series:
        body["series"] = [[round(t, 1), lag] for t, lag in downsample(group.series)]
    else:
        del body["series"]
    return body


def _trend_json(t: Trend) -> dict[str, Any]:
    return {"direction": t.direction, "arrow": t.arrow, "rate": round(t.rate, 3), "drain_seconds": t.drain_seconds}


def build_report(
    snapshot: Snapshot,
    history: list[Sample],
    built: Mapping[tuple[str, int], EndOffsetTable],
    window: float,
    record_at: RecordTimes,
) -> Report:
    merged = _merged(history, snapshot.samples)
    by_partition: dict[tuple[str, str, int], list[Observation]] = defaultdict(list)
    for s in merged:
        by_partition[(s.group, s.topic, s.partition)].append(Observation(s.time, s.committed, s.end))
    groups = []
    for name, description in sorted(snapshot.groups.items()):
        current = sorted((s for s in snapshot.samples if s.group == name), key=lambda s: (s.topic, s.partition))
        partitions = [
            _partition(s, by_partition[(name, s.topic, s.partition)], built, window, snapshot.time, record_at)
            for s in current
        ]
        verdict = group_status(Verdict(p.status, f"{p.topic}/{p.partition}: {p.reason}") for p in partitions)
        series = group_series(merged, name)
        known = [p.lag_seconds for p in partitions if p.lag_seconds is not None]
        groups.append(
            GroupReport(
                group=name,
                state=description.state,
                members=description.members,
                status=verdict.status,
                reason=verdict.reason,
                lag=sum(p.lag for p in partitions),
                # Unknown for one partition is unknown for the group: 0s would hide it.
                lag_seconds=max(known, default=0.0) if len(known) == len(partitions) else None,
                trend=trend(series, snapshot.time),
                partitions=partitions,
                series=series,
            )
        )
    return Report(snapshot.time, window, groups)


def _partition(
    s: Sample,
    seen: list[Observation],
    built: Mapping[tuple[str, int], EndOffsetTable],
    window: float,
    now: float,
    record_at: RecordTimes,
) -> PartitionReport:
    verdict = partition_status(seen, now, window)
    estimate = _estimate(s, built, now, record_at)
    return PartitionReport(
        topic=s.topic,
        partition=s.partition,
        committed=s.committed,
        end=s.end,
        lag=s.lag,
        lag_seconds=estimate.seconds,
        estimate=estimate.method,
        status=verdict.status,
        reason=verdict.reason,
        trend=trend([(o.time, o.lag) for o in seen], now),
        samples=sum(1 for o in seen if o.time >= now - window),
    )


def _estimate(
    s: Sample, built: Mapping[tuple[str, int], EndOffsetTable], now: float, record_at: RecordTimes
) -> Estimate:
    committed = s.committed or 0
    found = interpolated(built.get((s.topic, s.partition)), committed, s.end, now)
    return found or from_record(record_at.get((s.topic, s.partition, committed)), now)


def _merged(history: Iterable[Sample], latest: Iterable[Sample]) -> list[Sample]:
    unique = {(s.group, s.topic, s.partition, s.time): s for s in [*history, *latest]}
    return sorted(unique.values(), key=lambda s: s.time)


def group_series(history: Iterable[Sample], group: str) -> list[tuple[float, int]]:
    totals: dict[float, int] = defaultdict(int)
    for s in history:
        if s.group == group:
            totals[s.time] += s.lag
    return sorted(totals.items())


def downsample(series: list[tuple[float, int]], points: int = 240) -> list[tuple[float, int]]:
    """At most `points` points for a chart, keeping each bucket's peak so a spike is never hidden."""
    if len(series) <= points:
        return series
    start, span = series[0][0], series[-1][0] - series[0][0] or 1.0
    buckets: dict[int, tuple[float, int]] = {}
    for t, lag in series:
        slot = min(points - 1, int((t - start) / span * points))
        if slot not in buckets or lag >= buckets[slot][1]:
            buckets[slot] = (t, lag)
    return [buckets[k] for k in sorted(buckets)]


def missing_estimates(snapshot: Snapshot, built: Mapping[tuple[str, int], EndOffsetTable]) -> set[tuple[str, int, int]]:
    """(topic, partition, offset) of lagging partitions whose committed record is older than the sample table."""
    return {
        (s.topic, s.partition, s.committed or 0)
        for s in snapshot.samples
        if interpolated(built.get((s.topic, s.partition)), s.committed or 0, s.end, snapshot.time) is None
    }


async def read_record_times(kafka: KafkaAccess, wanted: set[tuple[str, int, int]], timeout: float) -> dict[Any, float]:
    """Record timestamps, one offset per partition per round (groups reading one topic lag at different offsets)."""
    found: dict[tuple[str, int, int], float] = {}
    pending = sorted(wanted)
    while pending:
        round_ = {TopicPartition(t, p): o for t, p, o in reversed(pending)}  # one offset per partition
        times = await record_times(kafka, round_, timeout)
        found.update({(tp.topic, tp.partition, round_[tp]): at for tp, at in times.items()})
        done = {(tp.topic, tp.partition, o) for tp, o in round_.items()}
        pending = [w for w in pending if w not in done]
    return found


async def look(
    kafka: KafkaAccess,
    store: SampleStore,
    *,
    groups: list[str] | None = None,
    prefix: str = DEFAULT_PREFIX,
    window: float = 600.0,
    timeout: float = 10.0,
    settle: float = 2.0,
) -> Report:
    """Sample, persist, judge. With no earlier sample to judge a lagging partition by, look again after `settle`."""
    snapshot = await collect(kafka, groups, prefix, timeout)
    store.add(snapshot.samples)
    history = store.history(snapshot.groups, since=snapshot.time - max(window, HOUR))
    built = tables(history)
    record_at = await read_record_times(kafka, missing_estimates(snapshot, built), timeout)
    report = build_report(snapshot, history, built, window, record_at)
    if settle and report.needs_second_look():
        await asyncio.sleep(settle)
        return await look(kafka, store, groups=groups, prefix=prefix, window=window, timeout=timeout, settle=0)
    return report
