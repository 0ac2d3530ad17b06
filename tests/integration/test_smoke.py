"""The stack is real: a topic with partitions, an idempotent producer, a consumer group with manual commits,
offsets read back through the admin client, and a NUMERIC round trip through asyncpg."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from fivecogs_shared import kafka_admin

pytestmark = pytest.mark.integration

RECORDS = 30


async def test_kafka_round_trip_with_manual_commits(stack_env) -> None:
    topic, group = f"smoke-{uuid.uuid4().hex[:8]}", f"smoke-group-{uuid.uuid4().hex[:8]}"
    await kafka_admin.ensure_topics(stack_env.kafka, [kafka_admin.TopicSpec(topic, partitions=3)])
    partitions = await kafka_admin.topic_partitions(stack_env.kafka, topic)
    assert sorted(tp.partition for tp in partitions) == [0, 1, 2]

    producer = AIOKafkaProducer(**stack_env.kafka.client(), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for n in range(RECORDS):
            await producer.send_and_wait(topic, f"value-{n}".encode(), key=f"key-{n % 7}".encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        **stack_env.kafka.client(),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        while len(received) < RECORDS:
            batches = await consumer.getmany(timeout_ms=5000)
            assert batches, "no records arrived within 5 s"
            received += [record.value for records in batches.values() for record in records]
            await consumer.commit()
    finally:
        await consumer.stop()

    assert sorted(received) == sorted(f"value-{n}".encode() for n in range(RECORDS))
    committed = await kafka_admin.committed_offsets(stack_env.kafka, group)
    ends = await kafka_admin.end_offsets(stack_env.kafka, partitions)
    assert committed == {tp: ends[tp] for tp in partitions if ends[tp] > 0}
    assert sum(ends.values()) == RECORDS
    # A key always lands on the same partition: per-entity order rests on it.
    assert len([tp for tp in partitions if ends[tp] > 0]) > 1


async def test_postgres_round_trip_keeps_money_exact(stack_env) -> None:
    conn = await asyncpg.connect(stack_env.database_url)
    try:
        await conn.execute("CREATE TEMP TABLE smoke (amount numeric(14, 2) NOT NULL)")
        await conn.execute("INSERT INTO smoke VALUES ($1), ($2)", Decimal("1250.50"), Decimal("0.10"))
        total = await conn.fetchval("SELECT sum(amount) FROM smoke")
    finally:
        await conn.close()
    assert total == Decimal("1250.60")
    assert isinstance(total, Decimal)
