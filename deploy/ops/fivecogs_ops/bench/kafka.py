"""What the bench asks Kafka: publish a backlog, the lag of a group, the end of topics, what a topic got."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from fivecogs_ops.bench.records import Record
from fivecogs_shared import kafka_admin
from fivecogs_shared.kafka_access import KafkaAccess

IN_FLIGHT = 2000  # sends awaited together while publishing a backlog
READ_SECONDS = 120.0  # reading a stage's events back: what is not there by then is counted missing
Sent = Callable[[int], None]


async def publish(access: KafkaAccess, records: Sequence[Record], sent: Sent = lambda _: None) -> None:
    """Every record acknowledged by all replicas (acks=all, idempotent), in the order given per partition."""
    producer = AIOKafkaProducer(**access.client(), acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        for start in range(0, len(records), IN_FLIGHT):
            chunk = records[start : start + IN_FLIGHT]
            futures = [await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers)) for r in chunk]
            await asyncio.gather(*futures)
            sent(start + len(chunk))
    finally:
        await producer.stop()


class Probe:
    """One admin client and one group-less consumer for the whole run: polling lag every fraction of a second
    must not open connections each time."""

    def __init__(self, admin: KafkaAccess) -> None:
        self.access = admin
        self._admin = kafka_admin.admin_client(admin)
        self.consumer = AIOKafkaConsumer(**admin.client(), enable_auto_commit=False)

    async def __aenter__(self) -> Probe:
        self.admin = await self._admin.__aenter__()
        await self.consumer.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.consumer.stop()
        await self._admin.__aexit__(kind, error, tb)

    async def ends(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return await kafka_admin.log_ends(self.consumer, partitions)

    async def topic_ends(self, topics: Iterable[str]) -> dict[TopicPartition, int]:
        existing = set(await kafka_admin.list_topics(self.admin))
        partitions = await kafka_admin.partitions_of(self.admin, [t for t in topics if t in existing])
        return await self.ends(partitions) if partitions else {}

    async def lag(self, group: str, partitions: Sequence[TopicPartition]) -> int:
        """Records the group has not committed yet on these partitions."""
        offsets = await asyncio.wait_for(self.admin.list_consumer_group_offsets(group), 10)
        committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
        ends = await self.ends(partitions)
        return sum(max(0, end - committed.get(tp, 0)) for tp, end in ends.items())

    async def partitions(self, topic: str) -> int:
        return len(await kafka_admin.partitions_of(self.admin, [topic]))

    async def read_types(self, since: dict[TopicPartition, int], until: dict[TopicPartition, int]) -> Counter[str]:
        """The ce_type of every record between two positions of a topic's partitions."""
        wanted = {tp: end for tp, end in until.items() if end > since.get(tp, 0)}
        found: Counter[str] = Counter()
        if not wanted:
            return found
        reader = AIOKafkaConsumer(**self.access.client(), enable_auto_commit=False)
        await reader.start()
        try:
            reader.assign(list(wanted))
            for tp in wanted:
                reader.seek(tp, since.get(tp, 0))
            deadline = asyncio.get_running_loop().time() + READ_SECONDS
            while wanted and asyncio.get_running_loop().time() < deadline:
                batches = await reader.getmany(*wanted, timeout_ms=1000, max_records=5000)
                for tp, records in batches.items():
                    for record in records:
                        if record.offset < wanted.get(tp, 0):
                            found[dict(record.headers).get("ce_type", b"").decode()] += 1
                    if await reader.position(tp) >= wanted.get(tp, 0):
                        wanted.pop(tp, None)
        finally:
            await reader.stop()
        return found


def grown(before: dict[TopicPartition, int], after: dict[TopicPartition, int]) -> int:
    return sum(end - before.get(tp, 0) for tp, end in after.items())
