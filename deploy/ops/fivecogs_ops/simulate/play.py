"""Talking to the real chain: publishing a step's records as a partner does, collecting what comes back on the
feedback and dead-letter topics, and reading management's report."""

from __future__ import annotations

import asyncio
import heapq
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from fivecogs_ops import partners
from fivecogs_ops.auth import bearer, refusal
from fivecogs_ops.simulate.figures import Report
from fivecogs_ops.simulate.records import Sent
from fivecogs_shared.contracts import COGS, dlq_topic, events_topic, feedback_topic, ingest_topic
from fivecogs_shared.contracts.topics import ingest_pattern
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.kafka_admin import TopicSpec, admin_client, ensure_topics, list_topics, topic_partitions

Cast = Mapping[str, Sequence[str]]  # partner -> the cogs it writes to
T = TypeVar("T")
PROVISIONING_AT_ONCE = 4


def answer_topics(cast: Cast) -> list[str]:
    """Where the chain answers the cast: each partner's feedback, and the dead letters of its ingest topics."""
    topics = [feedback_topic(partner) for partner in cast]
    return topics + [dlq_topic(ingest_topic(cog, partner)) for partner, cogs in cast.items() for cog in cogs]


def chain_topics(cast: Cast) -> list[str]:
    """Read too, only to notice records that did not come from this run."""
    ingest = [ingest_topic(cog, partner) for partner, cogs in cast.items() for cog in cogs]
    return ingest + [events_topic(cog) for cog in COGS]


class ManagementUnreachable(RuntimeError):
    pass


async def provision(admin: KafkaAccess, cast: Cast) -> dict[str, KafkaAccess]:
    """Every partner of the cast as `fivecogs partners add` makes it: its topics, ACLs and a new password. The
    events topics are created in case no service has started yet."""
    await ensure_topics(admin, [TopicSpec(events_topic(cog)) for cog in COGS])
    gate = asyncio.Semaphore(PROVISIONING_AT_ONCE)

    async def one(partner: str, cogs: Sequence[str]) -> tuple[str, KafkaAccess]:
        async with gate:
            return partner, (await partners.add(admin, partner, cogs)).access

    return dict(await asyncio.gather(*(one(partner, cogs) for partner, cogs in cast.items())))


def waves(records: Sequence[T], sent: Callable[[T], Sent] = lambda record: record) -> list[list[T]]:  # type: ignore[assignment,return-value]
    """The records in as few waves as keep the order that matters: Kafka orders one partner's topic only, so a
    record that follows another partner's record with the same key on the same cog goes a wave later (the chain
    takes each wave in before the next). Within a wave, records keep their order."""
    placed: list[list[T]] = []
    last: dict[tuple[str, bytes], tuple[int, str]] = {}  # (cog, key) -> (wave, partner) of its latest record
    for record in records:
        one = sent(record)
        slot = (one.topic.split(".")[1], one.key) if one.key is not None else None
        wave = 0
        if slot in last:
            before, partner = last[slot]
            wave = before if partner == one.partner else before + 1
        if slot is not None:
            last[slot] = (wave, one.partner)
        while len(placed) <= wave:
            placed.append([])
        placed[wave].append(record)
    return placed


class Publisher:
    """One idempotent producer with acks=all per partner, each with that partner's own credentials, as
    docs/partners.md asks of partners."""

    def __init__(self, cast: Mapping[str, KafkaAccess]) -> None:
        self.producers = {
            partner: AIOKafkaProducer(
                **access.client(), enable_idempotence=True, acks="all", linger_ms=5, max_request_size=1024 * 1024
            )
            for partner, access in cast.items()
        }

    async def __aenter__(self) -> Publisher:
        await asyncio.gather(*(producer.start() for producer in self.producers.values()))
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.gather(*(producer.stop() for producer in self.producers.values()))

    async def send(self, sent: Sent) -> asyncio.Future[Any]:
        """Queue one record with its partner's producer; the future completes when Kafka acked it."""
        producer = self.producers[sent.partner]
        future: asyncio.Future[Any] = await producer.send(
            sent.topic, sent.value, key=sent.key, headers=list(sent.headers)
        )
        return future

    async def publish(self, records: Sequence[Sent], on_sent: Callable[[int], None] | None = None) -> float:
        """Send in order (each producer keeps the order per partition) and wait for every ack; seconds taken."""
        started = time.perf_counter()
        pending = []
        for sent in records:
            pending.append(await self.send(sent))
            if on_sent and len(pending) % 50 == 0:
                on_sent(50)
        await asyncio.gather(*pending)
        if on_sent and len(pending) % 50:
            on_sent(len(pending) % 50)
        return time.perf_counter() - started


async def communication_topics(kafka: KafkaAccess) -> list[str]:
    """Every partner's communication ingest topic: where the subscriptions the chain holds came from."""
    async with admin_client(kafka) as admin:
        topics = await list_topics(admin)
    return [topic for topic in topics if re.fullmatch(ingest_pattern("communication"), topic)]


async def read_history(kafka: KafkaAccess, topics: Sequence[str], timeout: float = 60.0) -> list[Sent]:
    """Every record of the topics so far, in the order they were written, near enough: the partitions merged by
    the records' timestamps, each partition's own order kept (as the service reading them all took them in)."""
    partitions: list[list[tuple[int, Sent]]] = []
    for topic in topics:
        partitions += await _history(kafka, topic, timeout)
    return [sent for _, sent in heapq.merge(*partitions, key=lambda found: found[0])]


async def _history(kafka: KafkaAccess, topic: str, timeout: float) -> list[list[tuple[int, Sent]]]:
    """Every record of a topic so far with its timestamp, partition by partition in offset order."""
    partitions = await topic_partitions(kafka, topic)
    consumer = AIOKafkaConsumer(**kafka.client(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: dict[TopicPartition, list[tuple[int, Sent]]] = {tp: [] for tp in partitions}
        deadline = time.monotonic() + timeout
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} from the beginning took over {timeout:.0f}s")
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                records[tp] += [(record.timestamp, _as_sent(record)) for record in batch]
        return list(records.values())
    finally:
        await consumer.stop()


def _as_sent(record: ConsumerRecord) -> Sent:
    return Sent(record.topic, record.key, record.value or b"", tuple((n, bytes(v)) for n, v in record.headers))


async def fetch_report(management_url: str, token: str, timeout: float = 10.0) -> Report:
    """Management's report; `token` is an operator token management accepts."""
    bodies: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=management_url, headers=bearer(token), timeout=timeout) as client:
        for path in ("/v1/report/provinces", "/v1/report/regions"):
            bodies.append(await _get(client, path))
    return Report.from_json(bodies[0], bodies[1])


async def _get(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    try:
        response = await client.get(path)
        if refused := refusal(response):
            raise ManagementUnreachable(refused)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise ManagementUnreachable(f"cannot read {client.base_url}{path}: {error}") from error
    body: dict[str, Any] = response.json()
    return body
