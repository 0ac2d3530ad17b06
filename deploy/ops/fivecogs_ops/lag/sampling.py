"""One look at the cluster: for each consumer group, per topic and partition, the committed offset and the
log-end offset at one moment, plus who the group's members are."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from fivecogs_ops.dlq import replay_group
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.kafka_admin import (
    GroupDescription,
    admin_client,
    committed_offsets,
    describe_groups,
    end_offsets,
    partitions_of,
)
from fivecogs_shared.kafka_admin import list_groups_with as list_groups

DEFAULT_PREFIX = "fivecogs-"
# Groups that keep an operator tool's progress, not a service's: "Empty: no members" is their normal state, so they
# are shown only when named with --group.
TOOL_GROUPS = (replay_group(""),)


@dataclass(frozen=True)
class Sample:
    group: str
    topic: str
    partition: int
    time: float  # unix seconds
    committed: int | None  # None: the group never committed this partition
    end: int
    members: int | None = None  # the group's members at that moment (None: not recorded, an older sample)

    @property
    def lag(self) -> int:
        # Without a commit the group starts from the log start, which is 0: fivecogs keeps its logs forever.
        return max(0, self.end - (self.committed or 0))


@dataclass(frozen=True)
class Snapshot:
    time: float
    samples: list[Sample]
    groups: dict[str, GroupDescription]


async def collect(
    kafka: KafkaAccess, groups: list[str] | None = None, prefix: str = DEFAULT_PREFIX, timeout: float = 10.0
) -> Snapshot:
    """Sample the named groups, or every service's group: those whose name starts with `prefix`, tools' left out."""
    async with admin_client(kafka, timeout) as admin:
        names = groups or service_groups(await list_groups(admin, timeout), prefix)
        described = await describe_groups(admin, names, timeout)
        commits = await asyncio.gather(*(committed_offsets(kafka, g, timeout) for g in names))
        committed = dict(zip(names, commits, strict=True))
        topics = {g: _topics_of(committed[g], described.get(g)) for g in names}
        partitions = await partitions_of(admin, sorted(set().union(*topics.values())), timeout)
    ends = await end_offsets(kafka, partitions, timeout) if partitions else {}
    now = time.time()
    samples = [
        Sample(g, tp.topic, tp.partition, now, committed[g].get(tp), ends[tp], _members(described.get(g)))
        for g in names
        for tp in partitions
        if tp.topic in topics[g] and tp in ends
    ]
    return Snapshot(now, samples, described)


def _members(description: GroupDescription | None) -> int:
    return len(description.members) if description else 0


def service_groups(names: list[str], prefix: str = DEFAULT_PREFIX) -> list[str]:
    return [g for g in names if g.startswith(prefix) and not g.startswith(TOOL_GROUPS)]


async def group_names(kafka: KafkaAccess, timeout: float = 10.0) -> list[str]:
    """Every consumer group the cluster knows, sorted: the choices when a --group does not exist."""
    async with admin_client(kafka, timeout) as admin:
        return sorted(await list_groups(admin, timeout))


def _topics_of(committed: dict[TopicPartition, int], description: GroupDescription | None) -> set[str]:
    """What a group reads: topics it committed on, and topics its members were assigned."""
    owned = {p.rsplit("/", 1)[0] for m in (description.members if description else ()) for p in m.partitions}
    return {tp.topic for tp in committed} | owned


async def record_times(
    kafka: KafkaAccess, offsets: dict[TopicPartition, int], timeout: float = 5.0
) -> dict[TopicPartition, float]:
    """The timestamp (unix seconds) of the record at each given offset, read by a consumer of no group.

    For lag in seconds when the sample history does not reach back to the committed offset; partitions whose
    record does not arrive within the timeout are left out."""
    if not offsets:
        return {}
    consumer = AIOKafkaConsumer(**kafka.client(), enable_auto_commit=False, group_id=None)
    await asyncio.wait_for(consumer.start(), timeout)
    found: dict[TopicPartition, float] = {}
    try:
        consumer.assign(list(offsets))
        for tp, offset in offsets.items():
            consumer.seek(tp, offset)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first_records(consumer, offsets, found), timeout)
    finally:
        await consumer.stop()
    return found


async def _first_records(
    consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int], found: dict[TopicPartition, float]
) -> None:
    while len(found) < len(offsets):
        try:
            batches = await consumer.getmany(timeout_ms=200, max_records=len(offsets) * 10)
        except UnicodeDecodeError:
            # A header name that is not UTF-8 spoils a whole fetch (fivecogs_shared.fetching): ask each alone.
            await _one_by_one(consumer, offsets, found)
            return
        for tp, records in batches.items():
            if records and tp not in found:
                found[tp] = records[0].timestamp / 1000
                consumer.pause(tp)  # one record per partition is all we need


async def _one_by_one(
    consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int], found: dict[TopicPartition, float]
) -> None:
    """One partition at a time, one record each: a partition whose record this client cannot decode is left out
    (its seconds fall back to interpolation) and no other is lost to it."""
    pending = [tp for tp in offsets if tp not in found]
    consumer.pause(*pending)
    for tp in pending:
        consumer.seek(tp, offsets[tp])
        consumer.resume(tp)
        with contextlib.suppress(UnicodeDecodeError):
            while tp not in found:
                for records in (await consumer.getmany(tp, timeout_ms=200, max_records=1)).values():
                    if records:
                        found[tp] = records[0].timestamp / 1000
        consumer.pause(tp)
