"""Talking to the real chain: publishing a step's records as a partner does, collecting what comes back on the
feedback and dead-letter topics, and reading management's report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from fivecogs_ops.auth import bearer, refusal
from fivecogs_ops.simulate.figures import Report
from fivecogs_ops.simulate.records import Sent
from fivecogs_shared.contracts import COGS, FEEDBACK_TOPIC, dlq_topic, events_topic, ingest_topic
from fivecogs_shared.kafka_admin import TopicSpec, ensure_topics, topic_partitions

ANSWER_TOPICS = (FEEDBACK_TOPIC, *(dlq_topic(cog) for cog in COGS))
# Read too, only to notice records that did not come from this run.
CHAIN_TOPICS = (*(ingest_topic(cog) for cog in COGS), *(events_topic(cog) for cog in COGS))


class ManagementUnreachable(RuntimeError):
    pass


async def prepare_topics(bootstrap: str) -> None:
    """The ingest and answer topics, in case no service has created them yet."""
    await ensure_topics(bootstrap, [TopicSpec(t) for t in (*ANSWER_TOPICS, *CHAIN_TOPICS)])


class Publisher:
    """An idempotent producer with acks=all, as docs/partners.md asks of partners."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5, max_request_size=1024 * 1024
        )

    async def __aenter__(self) -> Publisher:
        await self.producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.producer.stop()

    async def publish(self, records: Sequence[Sent], on_sent: Callable[[int], None] | None = None) -> float:
        """Send in order (the producer keeps the order per partition) and wait for every ack; seconds taken."""
        started = time.perf_counter()
        pending = []
        for sent in records:
            pending.append(await self.producer.send(sent.topic, sent.value, key=sent.key, headers=list(sent.headers)))
            if on_sent and len(pending) % 50 == 0:
                on_sent(50)
        await asyncio.gather(*pending)
        if on_sent and len(pending) % 50:
            on_sent(len(pending) % 50)
        return time.perf_counter() - started


async def read_history(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Sent]:
    """Every record of a topic so far, each partition in offset order."""
    partitions = await topic_partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Sent] = []
        deadline = time.monotonic() + timeout
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} from the beginning took over {timeout:.0f}s")
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += [_as_sent(record) for record in batch]
        return records
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
