"""`fivecogs replay <cog>`: rebuild a service's state from the log.

The log is kept forever (topics are created with unlimited retention), so a read model can be thrown away and
rebuilt: with the service stopped, empty its tables (keeping migrations and the unsent outbox) and move its
consumer group back to offset 0 of everything it consumed. Started again, the service re-applies every event;
the events it re-emits carry the same ids as the first time, so downstream inboxes absorb them.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from fivecogs_shared import kafka_admin
from fivecogs_shared.kafka_access import KafkaAccess

# Replaying a service re-runs its side effects; these are the ones whose side effects are only events with
# deterministic ids. Communication would POST its webhooks again; marketing would re-take stock from a log
# whose order across topics differs from the first run's.
REPLAYABLE = ("management",)
KEPT_TABLES = ("schema_migrations", "outbox")


class ReplayRefused(RuntimeError):
    pass


@dataclass(frozen=True)
class ReplayPlan:
    cog: str
    tables: list[str]
    partitions: int
    events: int  # how many records the service will read again


async def replay(
    kafka: KafkaAccess,
    database_url: str,
    cog: str,
    *,
    schema: str | None = None,
    group_id: str | None = None,
    dry_run: bool = False,
) -> ReplayPlan:
    if cog not in REPLAYABLE:
        raise ReplayRefused(f"{cog} cannot be replayed safely; replayable: {', '.join(REPLAYABLE)}")
    schema, group_id = schema or cog, group_id or f"fivecogs-{cog}"
    group = await kafka_admin.describe_group(kafka, group_id)
    if group.members:
        hosts = ", ".join(f"{m.client_id}@{m.host}" for m in group.members)
        raise ReplayRefused(f"{group_id} has running members ({hosts}): stop the {cog} service first")
    committed = await kafka_admin.committed_offsets(kafka, group_id)
    tables = await _state_tables(database_url, schema)
    plan = ReplayPlan(cog, tables, len(committed), sum(committed.values()))
    if dry_run:
        return plan
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"TRUNCATE {', '.join(f'{schema}.{t}' for t in tables)}")
    finally:
        await conn.close()
    await kafka_admin.reset_group_offsets(kafka, group_id, dict.fromkeys(committed, 0))
    return plan


async def _state_tables(database_url: str, schema: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
            "AND table_type = 'BASE TABLE' ORDER BY table_name",
            schema,
        )
    finally:
        await conn.close()
    tables = [row["table_name"] for row in rows if row["table_name"] not in KEPT_TABLES]
    if not tables:
        raise ReplayRefused(f"schema {schema!r} has no tables: has the service ever run against this database?")
    return tables
