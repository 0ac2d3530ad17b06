"""Test helpers that talk to the real broker: publish partner events, collect what comes out."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts import feedback_topic, ingest_topic
from fivecogs_shared.contracts.feedback import ACCEPTED_TYPE, HELD_TYPE, REJECTED_TYPE
from fivecogs_shared.kafka_access import KafkaAccess

# The partner most tests publish as (provisioned once per session by the `test_partner` fixture).
PARTNER = "test-partner"
PARTNER_SOURCE = f"partner/{PARTNER}"


def operator_token() -> str:
    """The token the services started by the tests accept (tests/conftest.py sets it unless the caller did)."""
    return os.environ["FIVECOGS_OPERATOR_TOKENS"].split(",")[0].strip()


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {operator_token()}"}


def ce_headers(
    ce_type: str, *, source: str = PARTNER_SOURCE, event_id: str | None = None, correlation_id: str | None = None
) -> list[tuple[str, bytes]]:
    """`correlation_id`: as a cog sets it, the ce_id of the partner event that started the chain."""
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", (event_id or str(uuid.uuid4())).encode()),
        ("ce_source", source.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("content-type", b"application/json"),
    ]
    if correlation_id is not None:
        headers.append(("ce_correlationid", correlation_id.encode()))
    return headers


def ingest(cog: str, partner: str = PARTNER) -> str:
    """The test partner's ingest topic of a cog."""
    return ingest_topic(cog, partner)


FEEDBACK = feedback_topic(PARTNER)


class Partner:
    """A partner system publishing on its ingest topics (or, with the admin's access and a cog's source, a test
    posing as a cog on its events topic)."""

    def __init__(self, kafka: KafkaAccess, source: str = PARTNER_SOURCE) -> None:
        self.kafka, self.source = kafka, source
        self.producer = AIOKafkaProducer(**kafka.client(), enable_idempotence=True, acks="all")

    async def __aenter__(self) -> Partner:
        await self.producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.producer.stop()

    async def send(
        self,
        topic: str,
        ce_type: str,
        data: dict[str, Any],
        key: str,
        *,
        event_id: str | None = None,
        correlation_id: str | None = None,
    ) -> str:
        event_id = event_id or str(uuid.uuid4())
        headers = ce_headers(ce_type, source=self.source, event_id=event_id, correlation_id=correlation_id)
        await self.send_raw(topic, json.dumps(data).encode(), key, headers)
        return event_id

    async def send_raw(self, topic: str, value: bytes, key: str | None, headers: list[tuple[str, bytes]]) -> None:
        await self.producer.send_and_wait(topic, value, key=key.encode() if key else None, headers=headers)


class Tap:
    """Reads a topic from its current end (or the beginning) and keeps every record, for assertions."""

    def __init__(self, kafka: KafkaAccess, *topics: str, from_beginning: bool = False) -> None:
        self.kafka, self.topics = kafka, topics
        self.consumer = AIOKafkaConsumer(
            *topics,
            **kafka.client(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
        )
        self.records: list[ConsumerRecord] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Tap:
        await kafka_admin.ensure_topics(self.kafka, [kafka_admin.TopicSpec(t) for t in self.topics])
        await self.consumer.start()
        # Pin the current end before anything is published, so nothing sent after this is missed.
        for tp in self.consumer.assignment():
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await self.consumer.stop()

    async def _collect(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=200)
            for records in batches.values():
                self.records.extend(records)

    async def wait_for(
        self, predicate: Callable[[ConsumerRecord], bool], count: int = 1, timeout: float = 30
    ) -> list[ConsumerRecord]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [r for r in self.records if predicate(r)]
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {count} matching records within {timeout}s, saw {len(found)}")
            await asyncio.sleep(0.1)

    async def outcomes(self, event_ids: list[str], timeout: float = 30) -> dict[str, str]:
        """The one final answer to each of these partner events: "accepted", or the reason it was rejected."""
        for event_id in event_ids:
            await self.wait_for(_answering(event_id, outcomes_only=True), timeout=timeout)
        finals = {e: [outcome_of(r) for r in self.answers(e) if is_outcome(r)] for e in event_ids}
        assert all(len(found) == 1 for found in finals.values()), f"answered more than once: {finals}"
        return {event_id: found[0] for event_id, found in finals.items()}

    async def first_answers(self, event_ids: list[str], timeout: float = 30) -> list[ConsumerRecord]:
        """The first answer to each of these partner events (a held notice, or the outcome), in their order."""
        return [(await self.wait_for(_answering(event_id), timeout=timeout))[0] for event_id in event_ids]

    def answers(self, event_id: str) -> list[ConsumerRecord]:
        """Every answer (held notices and outcomes) to one partner event, in the order they came."""
        return [r for r in self.records if header(r, "ce_type") in _ANSWERS and data(r).get("event_id") == event_id]


_ANSWERS = (ACCEPTED_TYPE, HELD_TYPE, REJECTED_TYPE)


def _answering(event_id: str, outcomes_only: bool = False) -> Callable[[ConsumerRecord], bool]:
    kinds = (ACCEPTED_TYPE, REJECTED_TYPE) if outcomes_only else _ANSWERS
    return lambda r: header(r, "ce_type") in kinds and data(r).get("event_id") == event_id


def is_outcome(record: ConsumerRecord) -> bool:
    return header(record, "ce_type") in (ACCEPTED_TYPE, REJECTED_TYPE)


def outcome_of(record: ConsumerRecord) -> str:
    return "accepted" if header(record, "ce_type") == ACCEPTED_TYPE else str(data(record)["reason"])


def header(record: ConsumerRecord, name: str) -> str:
    value: bytes = dict(record.headers).get(name, b"")
    return value.decode()


def data(record: ConsumerRecord) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(record.value)
    return parsed


def of_type(ce_type: str) -> Callable[[ConsumerRecord], bool]:
    return lambda record: header(record, "ce_type") == ce_type


async def wait_caught_up(kafka: KafkaAccess, group_id: str, topics: list[str], timeout: float = 60) -> None:
    """Until the group has committed the end of every partition of the topics."""
    partitions = [tp for topic in topics for tp in await kafka_admin.topic_partitions(kafka, topic)]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ends = await kafka_admin.end_offsets(kafka, partitions)
        committed = await kafka_admin.committed_offsets(kafka, group_id)
        behind = {tp: end - committed.get(tp, 0) for tp, end in ends.items() if end > committed.get(tp, 0)}
        if not behind:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{group_id} still behind after {timeout}s: {behind}")
        await asyncio.sleep(0.3)


def free_port() -> int:
    """A loopback port nobody listens on now: for a service process a test starts beside others' services."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Writes one record whose header name is not UTF-8, as a client that takes any bytes there (librdkafka) can.
# aiokafka's pure-Python record builder encodes names with str.encode, which a str subclass can override.
RAW_HEADER_NAME_PRODUCER = """
import asyncio, sys
from aiokafka import AIOKafkaProducer

class RawName(str):
    def encode(self, *args, **kwargs):
        return b"x-\\xff\\xfe"

async def main(topic, *keys):
    from fivecogs_shared.kafka_access import KafkaAccess

    producer = AIOKafkaProducer(**KafkaAccess.from_env().client())
    await producer.start()
    try:
        for key in keys:
            sent = await producer.send_and_wait(topic, b"{}", key=key.encode(), headers=[(RawName("x"), b"1")])
            print(sent.partition, sent.offset)
    finally:
        await producer.stop()

asyncio.run(main(*sys.argv[1:]))
"""
