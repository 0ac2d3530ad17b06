"""Which partitions are stuck: a partition whose batch keeps failing (a database away, a bug) stops moving
while its records wait. The batch processor reports failures and successes here; /readyz, the
`fivecogs_partition_stalled` gauge and the logs read it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge

from fivecogs_shared.envelope import RecordLike

Partition = tuple[str, int]


@dataclass(frozen=True)
class Failure:
    since: float  # monotonic time of the first failure since the partition last moved
    reason: str


@dataclass
class PartitionHealth:
    """Failing partitions since when and why; stalled once failing for longer than `threshold` seconds."""

    group: str
    threshold: float
    registry: CollectorRegistry
    clock: Callable[[], float] = time.monotonic
    failures: dict[Partition, Failure] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.gauge = Gauge(
            "fivecogs_partition_stalled",
            "1 while a partition's batch has been failing for longer than the stall threshold",
            ["group", "topic", "partition"],
            registry=self.registry,
        )

    def failing(self, records: Iterable[RecordLike], error: BaseException) -> None:
        now, reason = self.clock(), repr(error)[:300]
        for partition in _partitions(records):
            first = self.failures.get(partition)
            self.failures[partition] = Failure(first.since if first else now, reason)

    def flowing(self, records: Iterable[RecordLike]) -> None:
        for partition in _partitions(records):
            if self.failures.pop(partition, None) is not None:
                self.gauge.labels(self.group, partition[0], str(partition[1])).set(0)

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Partitions revoked: their new owner reports them."""
        for partition in partitions:
            self.failures.pop(partition, None)

    def stalled(self) -> list[dict[str, object]]:
        """The stalled partitions for /readyz, and the gauge brought up to date."""
        now, found = self.clock(), []
        for (topic, partition), failure in sorted(self.failures.items()):
            seconds = now - failure.since
            stuck = seconds > self.threshold
            self.gauge.labels(self.group, topic, str(partition)).set(1 if stuck else 0)
            if stuck:
                found.append(
                    {"topic": topic, "partition": partition, "seconds": round(seconds, 1), "reason": failure.reason}
                )
        return found


def _partitions(records: Iterable[RecordLike]) -> set[Partition]:
    return {(record.topic, record.partition) for record in records}
