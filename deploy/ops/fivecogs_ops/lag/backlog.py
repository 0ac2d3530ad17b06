"""What no lag tool sees: events written but not yet relayed (each service's outbox), the rows its relay parked
for good (`outbox_parked`) and records set aside in dead-letter topics."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from fivecogs_ops.dlq import DeadLetterPartition
from fivecogs_ops.held import ServiceSchema
from fivecogs_shared import outbox

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class OutboxBacklog:
    service: str
    schema: str
    rows: int | None  # None: the schema has no outbox (the service never ran)
    oldest_seconds: float | None
    parked: int | None = None  # None: no outbox_parked table (the service has not started since it came)


@dataclass(frozen=True)
class DeadLetterTopic:
    topic: str
    waiting: int  # not replayed yet: an operator's to look at
    total: int  # ever written (dead-letter logs are kept forever)


async def outbox_backlogs(dsn: str, services: Sequence[ServiceSchema], timeout: float = 5.0) -> list[OutboxBacklog]:
    conn = await asyncio.wait_for(asyncpg.connect(dsn), timeout)
    try:
        return [await _outbox(conn, s, timeout) for s in services]
    finally:
        await conn.close()


async def _outbox(conn: asyncpg.Connection, s: ServiceSchema, timeout: float) -> OutboxBacklog:
    if not _SCHEMA_NAME.match(s.schema) or not await _table(conn, s.schema, "outbox"):
        return OutboxBacklog(s.service, s.schema, None, None)
    async with conn.transaction(readonly=True):
        # The services' own queries, which name their tables bare.
        await conn.execute(f"SET LOCAL search_path = {s.schema}; SET LOCAL statement_timeout = {int(timeout * 1000)}")
        rows, age = await outbox.backlog(conn)
        parked = await outbox.parked(conn) if await _table(conn, s.schema, "outbox_parked") else None
    return OutboxBacklog(s.service, s.schema, rows, age if rows else None, parked)


async def _table(conn: asyncpg.Connection, schema: str, table: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1)", f"{schema}.{table}"))


def dead_letter_topics(partitions: Iterable[DeadLetterPartition]) -> list[DeadLetterTopic]:
    """`dead_letters()`'s partitions added up per topic."""
    waiting: dict[str, int] = {}
    total: dict[str, int] = {}
    for p in partitions:
        waiting[p.topic] = waiting.get(p.topic, 0) + p.waiting
        total[p.topic] = total.get(p.topic, 0) + p.end
    return [DeadLetterTopic(topic, waiting[topic], total[topic]) for topic in sorted(total)]
