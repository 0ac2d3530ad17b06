"""The relay is not throttled by its poll interval (full batches follow each other at once), outbox ids are taken
in commit order, and no other transaction holds a relay back (real broker and Postgres)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from fivecogs_shared import kafka_admin, outbox
from fivecogs_shared.uow import OutgoingRecord

pytestmark = pytest.mark.integration

NEVER = 3600.0  # a poll interval no test waits for: whatever arrives came without it


@pytest.fixture
async def topic(stack_env) -> AsyncIterator[str]:
    name = f"test-relay-{uuid.uuid4().hex[:8]}"
    await kafka_admin.ensure_topics(stack_env.kafka, [kafka_admin.TopicSpec(name)])
    yield name
    async with kafka_admin.admin_client(stack_env.kafka) as admin:
        await admin.delete_topics([name])


async def write(pool: asyncpg.Pool, topic: str, values: list[bytes]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.write(conn, [OutgoingRecord(topic, b"k", value, [("n", value)]) for value in values])


async def read(kafka, topic: str, count: int, timeout: float = 60) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, **kafka.client(), group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(values) < count and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(record.value for record in batch)
    finally:
        await consumer.stop()
    return values


def relay_for(stack_env, schema: str, pool: asyncpg.Pool, batch: int) -> outbox.OutboxRelay:
    return outbox.OutboxRelay(
        dsn=stack_env.database_url, pool=pool, schema=schema, kafka=stack_env.kafka, batch=batch, poll_seconds=NEVER
    )


async def test_a_transaction_that_writes_no_outbox_holds_nothing_back(stack_env, schema_pool, topic) -> None:
    """Another service's long batch, say: its transaction is still open while this outbox's rows are relayed."""
    schema, pool = schema_pool
    older = await asyncpg.connect(stack_env.database_url)
    relay = relay_for(stack_env, schema, pool, batch=100)
    task = asyncio.create_task(relay.run())
    try:
        async with older.transaction():
            await older.execute("SELECT pg_current_xact_id()")  # an xid older than the rows' own
            await write(pool, topic, [b"first", b"second"])
            assert await read(stack_env.kafka, topic, 2) == [b"first", b"second"]
    finally:
        await relay.stop()
        await asyncio.wait_for(task, 20)
        await older.close()


async def test_outbox_ids_are_taken_in_commit_order(stack_env, schema_pool, topic) -> None:
    """A transaction that wrote outbox rows first commits them first: the next writer waits for its end, so no
    row can become visible after one with a higher id (the relay sends in id order and keeps no high-water mark)."""
    schema, pool = schema_pool
    first = await pool.acquire()
    try:
        opened = first.transaction()
        await opened.start()
        await outbox.write(first, [OutgoingRecord(topic, b"k", b"first", [])])
        second = asyncio.create_task(write(pool, topic, [b"second"]))
        await _waiting_for_a_lock(pool, schema)
        assert not second.done()
        await opened.commit()
        await asyncio.wait_for(second, 20)
    finally:
        await pool.release(first)
    async with pool.acquire() as conn:
        ordered = [bytes(r["value"]) for r in await conn.fetch("SELECT value FROM outbox ORDER BY id")]
    assert ordered == [b"first", b"second"]


async def _waiting_for_a_lock(pool: asyncpg.Pool, schema: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock')",
        f"fivecogs-{schema}",
    ):
        assert asyncio.get_running_loop().time() < deadline, "the second writer never waited for the first"
        await asyncio.sleep(0.05)


async def test_a_backlog_larger_than_a_batch_is_relayed_without_waiting_for_the_poll(
    stack_env, schema_pool, topic
) -> None:
    schema, pool = schema_pool
    values = [f"v-{i}".encode() for i in range(35)]
    await write(pool, topic, values)
    relay = relay_for(stack_env, schema, pool, batch=10)
    task = asyncio.create_task(relay.run())
    try:
        assert await read(stack_env.kafka, topic, len(values)) == values
    finally:
        await relay.stop()
        await asyncio.wait_for(task, 20)
    async with pool.acquire() as conn:
        assert (await outbox.backlog(conn))[0] == 0
