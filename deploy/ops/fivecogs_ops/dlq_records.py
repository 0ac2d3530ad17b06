"""`fivecogs dlq list`: each dead-lettered record with why it was parked, read without joining or creating a
consumer group (a consumer with no group, assigned its partitions and seeked, reads up to the end offsets taken
when it starts).

A record is waiting when its offset is at or past its partition's replay progress (`dlq.dead_letters`): records
before it were sent back by `fivecogs dlq replay` (or passed over by a `replay --kind`).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from fivecogs_ops.dlq import DeadLetterPartition, not_whole, owner
from fivecogs_shared.contracts import COGS, partner_of_topic
from fivecogs_shared.kafka_access import KafkaAccess

_SERVICE_GROUP = re.compile(rf"^fivecogs-({'|'.join(COGS)})(?:-|$)")


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    time: datetime  # the dead-letter record's timestamp: when it was parked
    partner: str | None  # whose ingest topic it came from (None: a cog's events topic)
    cog: str | None  # the service that parked it
    ce_id: str | None
    ce_type: str | None
    kind: str
    detail: str
    read_at: str | None  # topic/partition@offset where the service read the original
    consumer_group: str | None
    replayed: bool
    whole: bool  # False: only a slice of a value too large for the DLQ was kept (never replayed)

    @property
    def at(self) -> str:
        return f"{self.partition}@{self.offset}"


@dataclass(frozen=True)
class DeadLetterListing:
    shown: list[DeadLetter]  # the first `limit` of those asked for, by topic, partition and offset
    waiting: int  # every record still waiting, shown or not
    replayed: int
    by_kind: Counter[str]  # of the waiting ones


def wanted(
    partitions: Sequence[DeadLetterPartition], cog: str | None = None, partner: str | None = None
) -> list[DeadLetterPartition]:
    """The partitions that may hold the cog's (and the partner's) dead letters; an events topic's DLQ is shared
    by its consumers, so its records are told apart by their consumer group (`belongs`)."""
    return [
        p
        for p in partitions
        if (cog is None or owner(p.topic) in (cog, None)) and (partner is None or _partner(p.topic) == partner)
    ]


def belongs(letter: DeadLetter, cog: str | None) -> bool:
    return cog is None or letter.cog == cog


async def listing(
    kafka: KafkaAccess,
    partitions: Sequence[DeadLetterPartition],
    *,
    cog: str | None = None,
    everything: bool = False,
    limit: int | None = None,
    timeout: float = 30.0,
) -> DeadLetterListing:
    """The dead letters of the given partitions (the waiting ones; with `everything`, the replayed ones too)."""
    tally = _Tally(cog, everything, limit)
    await read(kafka, partitions, everything, tally.add, timeout)
    replayed = sum(p.replayed for p in partitions if cog is None or owner(p.topic) == cog)
    return DeadLetterListing(tally.shown(), tally.waiting, replayed, tally.by_kind)


@dataclass
class _Tally:
    """Counts every dead letter read, keeping only the first `limit` asked for: a DLQ may be long."""

    cog: str | None
    everything: bool
    limit: int | None
    waiting: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    kept: list[DeadLetter] = field(default_factory=list)

    def add(self, letter: DeadLetter) -> None:
        if not belongs(letter, self.cog):
            return
        if not letter.replayed:
            self.waiting += 1
            self.by_kind[letter.kind] += 1
        if self.everything or not letter.replayed:
            self.kept.append(letter)
            if self.limit is not None and len(self.kept) > 2 * self.limit + 1000:
                self.kept = self.shown()

    def shown(self) -> list[DeadLetter]:
        return sorted(self.kept, key=lambda letter: (letter.topic, letter.partition, letter.offset))[: self.limit]


async def read(
    kafka: KafkaAccess,
    partitions: Sequence[DeadLetterPartition],
    everything: bool,
    found: Callable[[DeadLetter], None],
    timeout: float = 30.0,
) -> None:
    """Every record from each partition's replay progress (from 0 with `everything`) up to its end, to `found`."""
    todo = {TopicPartition(p.topic, p.partition): p for p in partitions if p.end > (0 if everything else p.replayed)}
    if not todo:
        return
    consumer = AIOKafkaConsumer(**kafka.client(), group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        consumer.assign(list(todo))
        for tp, p in todo.items():
            consumer.seek(tp, 0 if everything else p.replayed)
        await _read_to_end(consumer, todo, found, timeout)
    finally:
        await consumer.stop()


async def _read_to_end(
    consumer: AIOKafkaConsumer,
    todo: dict[TopicPartition, DeadLetterPartition],
    found: Callable[[DeadLetter], None],
    timeout: float,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending := [tp for tp, p in todo.items() if await consumer.position(tp) < p.end]:
        if loop.time() > deadline:
            raise TimeoutError(f"no dead letter read for {timeout:.0f}s ({len(pending)} partitions behind)")
        for tp, records in (await consumer.getmany(*pending, timeout_ms=1000)).items():
            deadline = loop.time() + timeout  # a long DLQ takes long: only no progress at all is an error
            for record in records:
                if record.offset < todo[tp].end:
                    found(dead_letter(record, todo[tp]))


def dead_letter(record: ConsumerRecord, partition: DeadLetterPartition) -> DeadLetter:
    headers = {name: (value or b"").decode("utf-8", "replace") for name, value in record.headers}
    group = headers.get("fivecogs_consumer_group")
    read_at = None
    if "fivecogs_original_topic" in headers:
        where = headers["fivecogs_original_topic"], headers.get("fivecogs_original_partition", "?")
        read_at = f"{where[0]}/{where[1]}@{headers.get('fivecogs_original_offset', '?')}"
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        time=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        partner=_partner(record.topic),
        cog=owner(record.topic) or _service_of(group),
        ce_id=headers.get("ce_id"),
        ce_type=headers.get("ce_type"),
        kind=headers.get("fivecogs_error_kind") or "unknown",
        detail=headers.get("fivecogs_error_detail", ""),
        read_at=read_at,
        consumer_group=group,
        replayed=record.offset < partition.replayed,
        whole=not not_whole(record),
    )


def _partner(topic: str) -> str | None:
    return partner_of_topic(topic.removesuffix(".dlq"))


def _service_of(group: str | None) -> str | None:
    """The cog whose consumer group this is (`fivecogs-<cog>`, or a second one such as `fivecogs-<cog>-blue`)."""
    found = _SERVICE_GROUP.match(group or "")
    return found.group(1) if found else None
