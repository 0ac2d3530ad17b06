"""Consumer lag as a service sees it: `fivecogs_consumer_lag` (messages) and `fivecogs_consumer_lag_seconds`
per group/topic/partition, refreshed by a background task (`export_lag`) for the partitions this process owns.

Messages: log-end offset minus the group's committed offset. Seconds: how long ago was the record at the
committed offset written? Like kafka-lag-exporter, each partition keeps a small table of (log-end offset, time)
observations and interpolates in it; a record older than the table gives a lower bound (now minus the table's
oldest time). `fivecogs lag` uses the same table code on its persisted samples.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Gauge

if TYPE_CHECKING:
    from fivecogs_shared.service import Runtime

log = structlog.get_logger()

# (log-end offset, unix time it was observed), oldest first.
Point = tuple[int, float]


def written_at(points: Sequence[Point], offset: int) -> float | None:
    """When the record at `offset` was appended, by linear interpolation between the last observation whose end
    had not reached it and the first whose end had passed it. None when the table does not reach back that far
    (or has not seen the record yet)."""
    for i, (end, at) in enumerate(points):
        if end > offset:
            if i == 0:
                return None
            before_end, before_at = points[i - 1]
            return before_at + (offset + 1 - before_end) / (end - before_end) * (at - before_at)
    return None


@dataclass
class EndOffsetTable:
    """Observations of one partition's log-end offset over the last `horizon` seconds."""

    horizon: float = 3600.0
    points: list[Point] = field(default_factory=list)

    def add(self, end: int, at: float) -> None:
        if self.points and end < self.points[-1][0]:
            self.points.clear()  # the log went backwards (topic recreated): older times would mislead
        if len(self.points) >= 2 and self.points[-1][0] == end == self.points[-2][0]:
            # Interpolation only needs where a flat run starts and where it ends.
            self.points[-1] = (end, at)
        else:
            self.points.append((end, at))
        # Keep one point older than the horizon: it anchors records written just after it.
        while len(self.points) > 2 and self.points[1][1] < at - self.horizon:
            self.points.pop(0)

    def lag_seconds(self, committed: int, now: float) -> tuple[float, bool]:
        """Seconds since the first unconsumed record was written, and whether that is exact (else a lower bound)."""
        if not self.points or committed >= self.points[-1][0]:
            return 0.0, True
        at = written_at(self.points, committed)
        if at is None:
            return max(0.0, now - self.points[0][1]), False
        return max(0.0, now - at), True


class LagGauges:
    """The two gauges, registered once in the service's registry; rows of partitions no longer owned are removed."""

    LABELS = ("group", "topic", "partition")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Gauge(
            "fivecogs_consumer_lag",
            "Records not yet consumed: log-end offset minus committed offset",
            self.LABELS,
            registry=registry,
        )
        self.seconds = Gauge(
            "fivecogs_consumer_lag_seconds",
            "Age of the first record not yet consumed (0 when caught up)",
            self.LABELS,
            registry=registry,
        )
        self._shown: set[tuple[str, str, str]] = set()

    def show(self, rows: dict[tuple[str, str, str], tuple[int, float]]) -> None:
        for labels, (messages, seconds) in rows.items():
            self.messages.labels(*labels).set(messages)
            self.seconds.labels(*labels).set(seconds)
        for gone in self._shown - rows.keys():
            self.messages.remove(*gone)
            self.seconds.remove(*gone)
        self._shown = set(rows)


# One pair of gauges per registry, so a second exporter on the same service (a test's faster one) shares them.
_GAUGES: weakref.WeakKeyDictionary[CollectorRegistry, LagGauges] = weakref.WeakKeyDictionary()


def gauges_for(registry: CollectorRegistry) -> LagGauges:
    if registry not in _GAUGES:
        _GAUGES[registry] = LagGauges(registry)
    return _GAUGES[registry]


async def export_lag(runtime: Runtime, interval: float = 5.0, timeout: float = 5.0) -> None:
    """Background task of every service (ServiceDefinition.background): refresh the lag gauges forever."""
    gauges = gauges_for(runtime.metrics.registry)
    tables: dict[TopicPartition, EndOffsetTable] = {}
    while True:
        try:
            gauges.show(await measure(runtime, tables, timeout))
        except Exception as error:
            # Keep the last values and go on: a broker hiccup or a rebalance mid-measure is /readyz's business,
            # and a dead task would freeze the gauges without a word.
            log.warning("consumer lag not measured", error=repr(error))
        await asyncio.sleep(interval)


async def measure(
    runtime: Runtime, tables: dict[TopicPartition, EndOffsetTable], timeout: float = 5.0
) -> dict[tuple[str, str, str], tuple[int, float]]:
    """(messages, seconds) per (group, topic, partition) for every partition this process owns now."""
    rows: dict[tuple[str, str, str], tuple[int, float]] = {}
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that arrives as the awaited
    # call completes, and this runs in a loop that must stop when the service does.
    for group, consumer in _consumers(runtime):
        assigned = list(consumer.assignment())
        if not assigned:
            continue
        # A ListOffsets request, not highwater(): highwater goes stale when fetching stops (paused, stuck).
        async with asyncio.timeout(timeout):
            ends = await consumer.end_offsets(assigned)
        starts: dict[Any, int] = {}
        now = time.time()
        for tp in assigned:
            end = int(ends.get(tp, consumer.highwater(tp) or 0))
            async with asyncio.timeout(timeout):
                committed = await consumer.committed(tp)
                if committed is None:  # never committed: everything from the log start is unread
                    starts = starts or dict(await consumer.beginning_offsets(assigned))
                    committed = starts.get(tp, 0)
            table = tables.setdefault(tp, EndOffsetTable())
            table.add(end, now)
            seconds, _ = table.lag_seconds(int(committed), now)
            rows[(group, tp.topic, str(tp.partition))] = (max(0, end - int(committed)), seconds)
    for tp in set(tables) - {TopicPartition(t, int(p)) for _, t, p in rows}:
        del tables[tp]
    return rows


def _consumers(runtime: Runtime) -> list[tuple[str, Any]]:
    """The running aiokafka consumers behind the broker's subscribers, with their group."""
    found = []
    for subscriber in runtime.broker.subscribers:
        consumer = getattr(subscriber, "consumer", None)
        if consumer is not None:
            group = getattr(subscriber, "group_id", None) or runtime.settings.group_id
            found.append((str(group), consumer))
    return found
