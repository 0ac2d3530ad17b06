"""A row Kafka refuses for good is parked, not retried forever: the rows behind it are delivered in order, the
refused row waits in outbox_parked with its error, and topics get the sizes fivecogs sets (real broker and Postgres)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import NewTopic
from structlog.testing import capture_logs

from fivecogs_inputs.app import DEFINITION as INPUTS
from fivecogs_ops.dlq import parked_outbox
from fivecogs_shared import kafka_admin, outbox
from fivecogs_shared.contracts import events_topic
from fivecogs_shared.contracts.topics import DLQ_MAX_MESSAGE_BYTES, DLQ_MAX_RECORD_BYTES, TOPIC_MAX_MESSAGE_BYTES
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.metrics import ServiceMetrics
from fivecogs_shared.service import http_app
from fivecogs_shared.uow import OutgoingRecord

pytestmark = pytest.mark.integration

PARKED_EVENT = "outbox row parked: Kafka refused it"
Row = tuple[str, bytes, bytes]  # topic, key, value


@pytest.fixture
async def topics(stack_env) -> AsyncIterator[tuple[str, str]]:
    """An events-like topic and its dead-letter topic, as ensure_topics makes them."""
    base = f"test-parking-{uuid.uuid4().hex[:8]}"
    names = [base, f"{base}.dlq"]
    await kafka_admin.ensure_topics(stack_env.kafka, [kafka_admin.TopicSpec(name) for name in names])
    yield base, f"{base}.dlq"
    async with kafka_admin.admin_client(stack_env.kafka) as admin:
        await admin.delete_topics(names)


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 60, what: str = "condition") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.2)
    return result


async def write(pool: asyncpg.Pool, rows: list[Row]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.write(conn, [OutgoingRecord(topic, key, value, [("n", b"1")]) for topic, key, value in rows])


async def counts(pool: asyncpg.Pool) -> tuple[int, int]:
    async with pool.acquire() as conn:
        return (await outbox.backlog(conn))[0], await outbox.parked(conn)


async def relay_until_settled(stack_env, schema: str, pool: asyncpg.Pool, metrics: ServiceMetrics) -> None:
    """Run a relay until the outbox is empty and one row is parked, then stop it as a service does."""
    relay = outbox.OutboxRelay(
        dsn=stack_env.database_url,
        pool=pool,
        schema=schema,
        kafka=stack_env.kafka,
        batch=1000,
        poll_seconds=0.2,
        metrics=metrics,
    )
    task = asyncio.create_task(relay.run())
    try:
        await until(lambda: _settled(pool), what="outbox empty with one parked row")
    finally:
        await relay.stop()
        await asyncio.wait_for(task, 20)
    assert relay.parked_total == 1


async def _settled(pool: asyncpg.Pool) -> bool:
    return await counts(pool) == (0, 1)


async def delivered(kafka: KafkaAccess, topics: tuple[str, ...], count: int) -> list[ConsumerRecord]:
    """Everything on the topics, once `count` records arrived; fails if there are more (a duplicate)."""
    consumer = AIOKafkaConsumer(
        *topics, **kafka.client(), group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(records) < count and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    partitions = [tp for topic in topics for tp in await kafka_admin.topic_partitions(kafka, topic)]
    assert sum((await kafka_admin.end_offsets(kafka, partitions)).values()) == count
    return records


def assert_in_order(records: list[ConsumerRecord], sent: list[Row]) -> None:
    """Per topic and key, the values arrived exactly as sent (same key, same partition: list order is log order)."""
    streams = {(topic, key) for topic, key, _ in sent}
    for topic, key in streams:
        got = [r.value for r in records if (r.topic, r.key) == (topic, key)]
        assert got == [value for t, k, value in sent if (t, k) == (topic, key)], (topic, key)


async def test_a_row_too_large_for_the_producer_is_parked_and_the_rest_delivered_in_order(
    stack_env, schema_pool, topics
) -> None:
    schema, pool = schema_pool
    events, dlq = topics
    too_large = (dlq, b"a", b"y" * (DLQ_MAX_MESSAGE_BYTES + 100_000))  # over the DLQ topic and the producer
    good = [
        (dlq, b"a", b"a-1"),
        (events, b"b", b"b-1"),
        (dlq, b"a", b"a-2" + b"x" * 1_048_000),  # the dead letter: over 1 MiB with its headers, it fits now
        (dlq, b"a", b"a-3" + b"x" * (DLQ_MAX_RECORD_BYTES - 3 - 1 - 2)),  # the largest copy a DLQ surely takes
    ]
    after = [(dlq, b"a", b"a-4"), (events, b"b", b"b-2"), (dlq, b"c", b"c-1"), (events, b"a", b"a-e1")]
    await write(pool, [*good, too_large, *after])
    metrics = ServiceMetrics()

    with capture_logs() as logs:
        await relay_until_settled(stack_env, schema, pool, metrics)

    assert_in_order(await delivered(stack_env.kafka, topics, len(good) + len(after)), [*good, *after])
    [warning] = [entry for entry in logs if entry["event"] == PARKED_EVENT]
    assert (warning["topic"], warning["key"], warning["log_level"]) == (dlq, "a", "warning")
    assert warning["bytes"] == len(too_large[2]) + 1 + 2  # value, key, the header "n"
    assert "producer refused" in warning["error"]
    assert "MessageSizeTooLargeError" in warning["error"]
    assert metrics.registry.get_sample_value("fivecogs_outbox_parked_total", {"topic": dlq}) == 1
    listed = await parked_outbox(stack_env.database_url, "test", schema)
    assert listed.count == 1
    [row] = listed.rows
    assert (row.topic, row.key, row.bytes, row.error) == (dlq, b"a", warning["bytes"], warning["error"])


async def test_a_row_the_broker_refuses_is_parked_and_the_producer_replaced(stack_env, schema_pool, topics) -> None:
    schema, pool = schema_pool
    events, dlq = topics
    # Under the producer's max_request_size, over the topic's max.message.bytes: the broker is the one to refuse.
    refused = (events, b"k", b"z" * (2 * TOPIC_MAX_MESSAGE_BYTES))
    before = [(events, b"k", b"k-1"), (events, b"k", b"k-2")]
    # Same partition behind the refused row: the spoiled producer's sequence fails these; a new producer sends them.
    after = [(events, b"k", b"k-3"), (events, b"k", b"k-4"), (events, b"m", b"m-1"), (dlq, b"k", b"k-dlq-1")]
    await write(pool, [*before, refused, *after])

    with capture_logs() as logs:
        await relay_until_settled(stack_env, schema, pool, ServiceMetrics())

    assert_in_order(await delivered(stack_env.kafka, topics, len(before) + len(after)), [*before, *after])
    [warning] = [entry for entry in logs if entry["event"] == PARKED_EVENT]
    assert "broker refused" in warning["error"]
    assert "MessageSizeTooLargeError" in warning["error"]
    assert any("replaces its producer" in entry["event"] for entry in logs)
    async with pool.acquire() as conn:
        parked = await conn.fetchrow("SELECT topic, key, value, error, created_at, parked_at FROM outbox_parked")
    assert (parked["topic"], parked["key"], parked["value"]) == refused
    assert parked["error"] == warning["error"]
    assert parked["parked_at"] >= parked["created_at"]


async def test_ensure_topics_sets_max_message_bytes_on_new_and_existing_topics(stack_env) -> None:
    base = f"test-limits-{uuid.uuid4().hex[:8]}"
    old, old_dlq, new, new_dlq = base, f"{base}.dlq", f"{base}-new", f"{base}-new.dlq"
    async with kafka_admin.admin_client(stack_env.kafka) as admin:
        await admin.create_topics(
            [
                NewTopic(old, 1, 1, topic_configs={"retention.ms": "-1"}),  # the broker's default size
                NewTopic(old_dlq, 1, 1, topic_configs={"retention.ms": "3600000", "max.message.bytes": "1048576"}),
            ]
        )
    names = [old, old_dlq, new, new_dlq]
    wanted = {
        old: str(TOPIC_MAX_MESSAGE_BYTES),
        old_dlq: str(DLQ_MAX_MESSAGE_BYTES),
        new: str(TOPIC_MAX_MESSAGE_BYTES),
        new_dlq: str(DLQ_MAX_MESSAGE_BYTES),
    }
    try:
        with capture_logs() as first:
            await kafka_admin.ensure_topics(stack_env.kafka, [kafka_admin.TopicSpec(n) for n in names])
        # The broker applies an altered config a moment after it answers: wait until it describes it.
        configs = await until(lambda: _configs_if(stack_env.kafka, wanted), what="the new max.message.bytes")
        with capture_logs() as second:
            await kafka_admin.ensure_topics(stack_env.kafka, [kafka_admin.TopicSpec(n) for n in names])
    finally:
        async with kafka_admin.admin_client(stack_env.kafka) as admin:
            await admin.delete_topics(names)

    # Retention is given at creation only: an existing topic keeps its own.
    assert {name: configs[name]["retention.ms"] for name in names} == {
        old: "-1",
        old_dlq: "3600000",
        new: "-1",
        new_dlq: "-1",
    }
    assert sorted(entry["topic"] for entry in first if entry["event"] == "topic config set") == [old, old_dlq]
    assert [entry for entry in second if entry["event"] == "topic config set"] == []


async def _configs_if(kafka: KafkaAccess, wanted: dict[str, str]) -> dict[str, dict[str, str]] | None:
    """The topics' max.message.bytes and retention.ms, once max.message.bytes is as wanted everywhere."""
    async with kafka_admin.admin_client(kafka) as admin:
        configs = await kafka_admin.topic_configs(admin, list(wanted), ["max.message.bytes", "retention.ms"])
    return configs if {name: c["max.message.bytes"] for name, c in configs.items()} == wanted else None


async def test_a_service_reports_its_parked_rows_in_metrics(run_service) -> None:
    async with run_service(INPUTS) as runtime:
        async with runtime.pool.acquire() as conn, conn.transaction():
            # Over fivecogs.inputs.events' 1 MiB: the broker refuses it, so nothing reaches the topic.
            record = OutgoingRecord(events_topic("inputs"), b"too-large", b"z" * (2 * TOPIC_MAX_MESSAGE_BYTES), [])
            await outbox.write(conn, [record])
        await until(lambda: _settled(runtime.pool), what="the row parked")
        transport = httpx.ASGITransport(app=http_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            text = (await client.get("/metrics")).text
    assert "fivecogs_outbox_parked_rows 1.0" in text.splitlines()
    assert "fivecogs_outbox_backlog 0.0" in text.splitlines()
