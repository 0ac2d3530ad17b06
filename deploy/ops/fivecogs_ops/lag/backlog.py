"""What no lag tool sees: events written but not yet relayed (each service's outbox) and records set aside in
dead-letter topics."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from dataclasses import dataclass

import asyncpg

from fivecogs_shared.contracts import COGS
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.kafka_admin import admin_client, end_offsets, list_topics, partitions_of

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class OutboxBacklog:
    schema: str
    rows: int | None  # None: the schema has no outbox (the service never ran)
    oldest_seconds: float | None


async def outbox_backlogs(dsn: str, schemas: tuple[str, ...] = COGS, timeout: float = 5.0) -> list[OutboxBacklog]:
    conn = await asyncio.wait_for(asyncpg.connect(dsn), timeout)
    try:
        return [await _outbox(conn, schema, timeout) for schema in schemas]
    finally:
        await conn.close()


async def _outbox(conn: asyncpg.Connection, schema: str, timeout: float) -> OutboxBacklog:
    if not _SCHEMA_NAME.match(schema) or not await conn.fetchval("SELECT to_regclass($1)", f"{schema}.outbox"):
        return OutboxBacklog(schema, None, None)
    row = await conn.fetchrow(
        f"SELECT count(*) AS n, extract(epoch FROM now() - min(created_at))::float8 AS age FROM {schema}.outbox",
        timeout=timeout,
    )
    assert row is not None
    return OutboxBacklog(schema, int(row["n"]), row["age"])


async def dlq_counts(kafka: KafkaAccess, timeout: float = 10.0) -> dict[str, int]:
    """Records ever written to each `*.dlq` topic (logs are kept forever, so the end offsets add up to it)."""
    async with admin_client(kafka, timeout) as admin:
        topics = [t for t in await list_topics(admin, timeout) if t.endswith(".dlq")]
        partitions = await partitions_of(admin, topics, timeout)
    counts: dict[str, int] = defaultdict(int, dict.fromkeys(topics, 0))
    for tp, end in (await end_offsets(kafka, partitions, timeout) if partitions else {}).items():
        counts[tp.topic] += end
    return dict(sorted(counts.items()))
