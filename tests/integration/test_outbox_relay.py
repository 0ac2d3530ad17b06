"""The relay is not throttled by its poll interval: full batches follow each other at once, and rows held back by an
older transaction (which wakes no relay when it commits) are relayed once it ends (real broker and Postgres)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from fivecogs_shared import db, kafka_admin, outbox
from fivecogs_shared.uow import OutgoingRecord

pytestmark = pytest.mark.integration

NEVER = 3600.0  # a poll interval no test waits for: whatever arrives came without it


@pytest.fixture
async def schema_pool(stack_env, tmp_path: Path) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    schema = f"test_relay_{uuid.uuid4().hex[:8]}"
    pool = await db.create_pool(stack_env.database_url, schema)
    await db.migrate(pool, schema, tmp_path)
    try:
        yield schema, pool
    finally:
        await pool.close()
        conn = await asyncpg.connect(stack_env.database_url)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


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


async def test_rows_held_back_by_an_older_transaction_are_relayed_when_it_ends(stack_env, schema_pool, topic) -> None:
    schema, pool = schema_pool
    older = await asyncpg.connect(stack_env.database_url)  # another service's batch, say: it notifies no one here
    relay = relay_for(stack_env, schema, pool, batch=100)
    task = asyncio.create_task(relay.run())
    try:
        async with older.transaction():
            await older.execute("SELECT pg_current_xact_id()")  # takes an xid: every later row waits for it
            await write(pool, topic, [b"held-1", b"held-2"])
            async with pool.acquire() as conn:
                assert (await outbox.backlog(conn))[0] == 2  # no relay may send them yet
        assert await read(stack_env.kafka, topic, 2) == [b"held-1", b"held-2"]
    finally:
        await relay.stop()
        await asyncio.wait_for(task, 20)
        await older.close()


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
