"""`fivecogs dlq`: look into a cog's dead-letter topics and send their records back to where they came from.

A record is parked in `<topic>.dlq` byte for byte, with `fivecogs_*` headers saying why. Once the cause is
fixed (a bug deployed away, a partner's data corrected upstream), `replay` re-publishes the original key,
value and headers to that DLQ's own topic: `<topic>`, whatever a header claims, so a record goes back only to
the partner topic it came from. Its progress is a consumer group of its own, so a second run only sends what
arrived since the first.

Beside the topic, `parked_outbox` reads a service's `outbox_parked`: the rows its outbox relay could not publish at
all, because Kafka refused them for good (too large for the topic, an invalid topic).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from fivecogs_shared import outbox
from fivecogs_shared.contracts import COGS
from fivecogs_shared.contracts.topics import ingest_pattern, ingest_topic
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.kafka_admin import admin_client, committed_offsets, end_offsets, list_topics, partitions_of

ERROR_HEADER_PREFIX = "fivecogs_"
PARKED_SHOWN = 200  # rows listed per service; the count is always the whole
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass
class DlqSummary:
    topic: str
    read: int = 0
    replayed: int = 0
    not_whole: int = 0  # copies that kept only a slice of a value too large for the DLQ: never replayed
    by_kind: Counter[str] = field(default_factory=Counter)


def replay_group(cog: str) -> str:
    """The consumer group that keeps `fivecogs dlq replay <cog>`'s progress (only replay commits it)."""
    return f"fivecogs-dlq-replay-{cog}"


def owner(topic: str) -> str | None:
    """The cog whose `dlq replay` reads this dead-letter topic; None for the dead letters of a service's own
    events topic (written by its consumers: a bug to fix, never replayed by the tool)."""
    for cog in COGS:
        if re.match(dlq_pattern(cog), topic):
            return cog
    return None


@dataclass(frozen=True, order=True)
class DeadLetterPartition:
    """One partition of a dead-letter topic: records before `replayed` were sent back (or passed over by a
    `replay --kind`); the rest wait for an operator."""

    topic: str
    partition: int
    replayed: int
    end: int

    @property
    def waiting(self) -> int:
        return max(0, self.end - self.replayed)


async def dead_letters(kafka: KafkaAccess, timeout: float = 10.0) -> list[DeadLetterPartition]:
    """Every partition of every `*.dlq` topic with its replay progress; reads offsets only and joins no group."""
    async with admin_client(kafka, timeout) as admin:
        topics = [t for t in await list_topics(admin, timeout) if t.endswith(".dlq")]
        partitions = await partitions_of(admin, topics, timeout)
    ends = await end_offsets(kafka, partitions, timeout) if partitions else {}
    cogs = sorted({cog for cog in map(owner, topics) if cog})
    replayed: dict[TopicPartition, int] = {}
    for progress in await asyncio.gather(*(_replay_progress(kafka, c, timeout) for c in cogs)):
        replayed |= progress
    return sorted(
        DeadLetterPartition(tp.topic, tp.partition, min(replayed.get(tp, 0), end), end) for tp, end in ends.items()
    )


async def _replay_progress(kafka: KafkaAccess, cog: str, timeout: float) -> dict[TopicPartition, int]:
    """The replay group's committed offsets, asked again while the coordinator is not ready: a new cluster
    creates its offsets topic only when a group is first asked about."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await committed_offsets(kafka, replay_group(cog), timeout)
        except KafkaError as error:
            if not error.retriable or loop.time() > deadline:
                raise
        await asyncio.sleep(0.5)


def _kind(record: ConsumerRecord) -> str:
    return dict(record.headers).get("fivecogs_error_kind", b"").decode() or "unknown"


def not_whole(record: ConsumerRecord) -> bool:
    """A copy of a record too large for its DLQ: a slice of the value, with the whole one's size and hash."""
    return any(name == "fivecogs_value_sha256" for name, _ in record.headers)


def dlq_pattern(cog: str, partner: str | None = None) -> str:
    """The dead-letter topics of every partner's ingest topic of the cog (or of the one partner's)."""
    if partner is not None:
        return rf"^{re.escape(ingest_topic(cog, partner))}\.dlq$"
    return rf"^{ingest_pattern(cog)}\.dlq$"


def original(record: ConsumerRecord) -> tuple[str, list[tuple[str, bytes]]]:
    """The topic the record came from (the DLQ's own: never a header's say) and the headers the partner sent."""
    return record.topic.removesuffix(".dlq"), [
        (k, v) for k, v in record.headers if not k.startswith(ERROR_HEADER_PREFIX)
    ]


async def drain(
    kafka: KafkaAccess,
    cog: str,
    *,
    kinds: frozenset[str] | None = None,
    partner: str | None = None,
    group_id: str | None = None,
    progress: Callable[[DlqSummary], None] = lambda summary: None,
) -> DlqSummary:
    """Read the cog's DLQs (only the partner's, when given) up to their current end, re-publish the records of
    the given kinds (all when None) and commit, so they are not sent twice. (`dlq_records` reads without a group.)"""
    summary = DlqSummary(f"fivecogs.{cog}.ingest.{partner or '*'}.dlq")
    consumer = AIOKafkaConsumer(
        **kafka.client(),
        group_id=group_id or replay_group(cog),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(**kafka.client(), enable_idempotence=True, acks="all")
    await consumer.start()
    await producer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if re.match(dlq_pattern(cog, partner), t))
        if not topics:
            return summary
        consumer.subscribe(topics)
        await _wait_for_assignment(consumer)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while await _behind(consumer, ends):
            batches = await consumer.getmany(timeout_ms=1000)
            for record in (r for records in batches.values() for r in records if r.offset < ends[_tp(r)]):
                await _send_back(producer, record, kinds, summary)
            await consumer.commit()
            progress(summary)
    finally:
        await producer.stop()
        await consumer.stop()
    return summary


async def _send_back(
    producer: AIOKafkaProducer, record: ConsumerRecord, kinds: frozenset[str] | None, summary: DlqSummary
) -> None:
    summary.read += 1
    summary.by_kind[_kind(record)] += 1
    if kinds is not None and _kind(record) not in kinds:
        return  # passed over: committed past like the rest
    if not_whole(record):
        summary.not_whole += 1
        return
    target, headers = original(record)
    await producer.send_and_wait(target, record.value, key=record.key, headers=headers)
    summary.replayed += 1


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


@dataclass(frozen=True)
class ParkedOutbox:
    service: str
    count: int | None  # None: no outbox_parked table (the service has not started since it came)
    rows: list[outbox.ParkedRow]


async def parked_outbox(dsn: str, service: str, schema: str | None = None, timeout: float = 5.0) -> ParkedOutbox:
    """The rows the service's outbox relay parked: how many, and the oldest `PARKED_SHOWN` (reads only)."""
    schema = schema or service
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"unsafe schema name {schema!r}")
    conn = await asyncio.wait_for(asyncpg.connect(dsn), timeout)
    try:
        if not await conn.fetchval("SELECT to_regclass($1)", f"{schema}.outbox_parked"):
            return ParkedOutbox(service, None, [])
        async with conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL search_path = {schema}")  # the shared queries name the table bare
            return ParkedOutbox(service, await outbox.parked(conn), await outbox.parked_rows(conn, PARKED_SHOWN))
    finally:
        await conn.close()
