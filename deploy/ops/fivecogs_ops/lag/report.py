"""What the CLI and the page show: per group and partition, lag in records and seconds, Burrow's status, and the
trend, from the latest snapshot judged against the persisted samples before it."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from aiokafka import TopicPartition

from fivecogs_ops.lag.estimate import Estimate, behind, tables
from fivecogs_ops.lag.rules import Observation, Status, Trend, Verdict, group_status, partition_status, trend
from fivecogs_ops.lag.sampling import DEFAULT_PREFIX, Sample, Snapshot, collect, record_times
from fivecogs_ops.lag.store import SampleStore
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.kafka_admin import Member
from fivecogs_shared.lag import EndOffsetTable

HOUR = 3600.0
# (topic, partition, offset) -> the record's timestamp
Offset = tuple[str, int, int]
RecordTimes = Mapping[Offset, float]


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
    estimate: str  # how the group's seconds were found: its slowest partition's method
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
        by_partition[(s.group, s.topic, s.partition)].append(Observation(s.time, s.committed, s.end, s.members))
    groups = []
    for name, description in sorted(snapshot.groups.items()):
        current = sorted((s for s in snapshot.samples if s.group == name), key=lambda s: (s.topic, s.partition))
        judge = Judge(built, window, snapshot.time, record_at, members=len(description.members))
        partitions = [judge.partition(s, by_partition[(name, s.topic, s.partition)]) for s in current]
        verdict = group_status(Verdict(p.status, f"{p.topic}/{p.partition}: {p.reason}") for p in partitions)
        series = group_series(merged, name)
        slowest = _slowest(partitions)
        groups.append(
            GroupReport(
                group=name,
                state=description.state,
                members=description.members,
                status=verdict.status,
                reason=verdict.reason,
                lag=sum(p.lag for p in partitions),
                lag_seconds=slowest.seconds,
                estimate=slowest.method,
                trend=trend(series, snapshot.time),
                partitions=partitions,
                series=series,
            )
        )
    return Report(snapshot.time, window, groups)


@dataclass(frozen=True)
class Judge:
    """What one group's partitions are judged with: the end-offset tables, the window, the moment, the record
    timestamps read, and how many members the group has."""

    built: Mapping[tuple[str, int], EndOffsetTable]
    window: float
    now: float
    record_at: RecordTimes
    members: int

    def partition(self, s: Sample, seen: list[Observation]) -> PartitionReport:
        verdict = partition_status(seen, self.now, self.window, members=self.members)
        estimate = self.estimate(s)
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
            trend=trend([(o.time, o.lag) for o in seen], self.now),
            samples=sum(1 for o in seen if o.time >= self.now - self.window),
        )

    def estimate(self, s: Sample) -> Estimate:
        committed = s.committed or 0
        at = self.record_at.get((s.topic, s.partition, committed))
        return behind(self.built.get((s.topic, s.partition)), at, committed, s.end, self.now)


def _slowest(partitions: list[PartitionReport]) -> Estimate:
    """The group is as far behind as its slowest partition; unknown for one partition is unknown for the group
    (0 s would hide it)."""
    if any(p.lag_seconds is None for p in partitions):
        return Estimate(None, "unknown")
    slowest = max(partitions, key=lambda p: p.lag_seconds or 0.0, default=None)
    if slowest is None or not slowest.lag:
        return Estimate(0.0, "caught-up")
    return Estimate(slowest.lag_seconds, slowest.estimate)


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


def lagging_offsets(snapshot: Snapshot) -> set[tuple[str, int, int]]:
    """(topic, partition, committed offset) of every lagging partition: the records whose age is the lag."""
    return {(s.topic, s.partition, s.committed or 0) for s in snapshot.samples if s.lag > 0}


async def read_record_times(kafka: KafkaAccess, store: SampleStore, wanted: set[Offset], timeout: float) -> RecordTimes:
    """Record timestamps, from the store's cache where an earlier look read them (a record's timestamp never
    changes), else from Kafka: one offset per partition per round (groups reading one topic lag at different
    offsets). Those that could not be read are remembered for a while too, so a watch does not wait on each look."""
    found = store.record_times(wanted)
    pending = sorted(wanted - found.keys())
    while pending:
        round_ = {TopicPartition(t, p): o for t, p, o in reversed(pending)}  # one offset per partition
        times = await record_times(kafka, round_, timeout)
        read = {(tp.topic, tp.partition, o): times.get(tp) for tp, o in round_.items()}
        store.add_record_times(read)
        found.update(read)
        pending = [w for w in pending if w not in read]
    return {key: at for key, at in found.items() if at is not None}


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
    record_at = await read_record_times(kafka, store, lagging_offsets(snapshot), timeout)
    report = build_report(snapshot, history, built, window, record_at)
    if settle and report.needs_second_look():
        await asyncio.sleep(settle)
        return await look(kafka, store, groups=groups, prefix=prefix, window=window, timeout=timeout, settle=0)
    return report
