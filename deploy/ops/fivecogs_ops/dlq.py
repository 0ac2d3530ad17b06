"""`fivecogs dlq`: look into a dead-letter topic and send its records back to where they came from.

A record is parked in `<topic>.dlq` byte for byte, with `fivecogs_*` headers saying why. Once the cause is
fixed (a bug deployed away, a partner's data corrected upstream), `replay` re-publishes the original key,
value and headers to the original topic. Its progress is a consumer group of its own, so a second run only
sends what arrived since the first.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from fivecogs_shared.contracts import dlq_topic

ERROR_HEADER_PREFIX = "fivecogs_"


@dataclass
class DlqSummary:
    topic: str
    read: int = 0
    replayed: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)


def _kind(record: ConsumerRecord) -> str:
    return dict(record.headers).get("fivecogs_error_kind", b"").decode() or "unknown"


def original(record: ConsumerRecord) -> tuple[str, list[tuple[str, bytes]]]:
    """The topic the record came from and its headers as the partner sent them."""
    headers = dict(record.headers)
    topic = headers.get("fivecogs_original_topic", b"").decode()
    if not topic:
        raise ValueError(f"{record.topic}@{record.partition}:{record.offset} has no fivecogs_original_topic header")
    return topic, [(k, v) for k, v in record.headers if not k.startswith(ERROR_HEADER_PREFIX)]


async def drain(
    bootstrap: str,
    cog: str,
    *,
    kinds: frozenset[str] | None = None,
    replay: bool,
    group_id: str | None = None,
    progress: Callable[[DlqSummary], None] = lambda summary: None,
) -> DlqSummary:
    """Read the cog's DLQ up to its current end; with `replay`, re-publish the records of the given kinds
    (all when None) and commit, so they are not sent twice. Without it, only count (nothing is committed)."""
    topic = dlq_topic(cog)
    summary = DlqSummary(topic)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id or f"fivecogs-dlq-replay-{cog}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await consumer.start()
    await producer.start()
    try:
        await _wait_for_assignment(consumer)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while await _behind(consumer, ends):
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    if record.offset >= ends[_tp(record)]:
                        continue
                    summary.read += 1
                    summary.by_kind[_kind(record)] += 1
                    if replay and (kinds is None or _kind(record) in kinds):
                        target, headers = original(record)
                        await producer.send_and_wait(target, record.value, key=record.key, headers=headers)
                        summary.replayed += 1
            if replay:
                await consumer.commit()
            progress(summary)
    finally:
        await producer.stop()
        await consumer.stop()
    return summary


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


def _tp(record: ConsumerRecord) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


async def _wait_for_assignment(consumer: AIOKafkaConsumer, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not consumer.assignment():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("no partitions assigned to the DLQ reader")
        await asyncio.sleep(0.1)
