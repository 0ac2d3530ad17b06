"""After a drain, every effect checked: the inbox's outcomes, the schema's rows, nothing left in the outbox, held
or parked, the service's events read back from its topic, nothing dead-lettered."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from aiokafka import TopicPartition

from fivecogs_ops.bench.fresh import Stage
from fivecogs_ops.bench.kafka import Probe, grown
from fivecogs_ops.bench.workloads import Workload
from fivecogs_shared.contracts import UPSTREAM, dlq_topic, events_topic

Offsets = dict[TopicPartition, int]
WEBHOOK_RATE = 50.0  # deliveries a second the wait for webhooks allows for at least


@dataclass
class Before:
    """Where the stage's topics ended before anything of it was published."""

    events: Offsets
    dead_letters: Offsets


def dead_letter_topics(stage: Stage) -> list[str]:
    return [dlq_topic(stage.ingest), *(dlq_topic(events_topic(up)) for up in UPSTREAM[stage.cog])]


async def before(probe: Probe, stage: Stage) -> Before:
    return Before(await probe.topic_ends([events_topic(stage.cog)]), await probe.topic_ends(dead_letter_topics(stage)))


async def backlog_left(conn: asyncpg.Connection, schema: str) -> int:
    """Outbox rows not relayed yet and events still held: the drain is not over while there are any."""
    found = await conn.fetchval(f"SELECT (SELECT count(*) FROM {schema}.outbox) + (SELECT count(*) FROM {schema}.held)")
    return int(found)


async def verify(conn: asyncpg.Connection, probe: Probe, stage: Stage, workload: Workload, start: Before) -> list[str]:
    problems = await _database(conn, stage.schema, workload)
    after = await probe.topic_ends([events_topic(stage.cog)])
    events = await probe.read_types(start.events, after)
    if events != workload.events:
        problems.append(f"events {_counts(events)}, expected {_counts(workload.events)}")
    dead = grown(start.dead_letters, await probe.topic_ends(dead_letter_topics(stage)))
    if dead:
        problems.append(f"{dead} dead letter(s)")
    return problems


async def _database(conn: asyncpg.Connection, schema: str, workload: Workload) -> list[str]:
    problems = []
    rows = await conn.fetch(f"SELECT outcome, count(*) AS n FROM {schema}.inbox GROUP BY outcome")
    outcomes = {row["outcome"]: row["n"] for row in rows}
    if outcomes != {"accepted": workload.consumed}:
        problems.append(f"inbox {_counts(outcomes)}, expected accepted={workload.consumed}")
    for table, expected in workload.rows.items():
        found = await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}")
        if found != expected:
            problems.append(f"{table}: {found} rows, expected {expected}")
    for table in ("outbox", "outbox_parked", "held"):
        if left := await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}"):
            problems.append(f"{left} row(s) left in {table}")
    return problems


def _counts(counts: Counter[str] | dict[str, int]) -> str:
    return ", ".join(f"{name.removeprefix('th.fivecogs.')}={n}" for name, n in sorted(counts.items())) or "none"


async def webhooks(
    conn: asyncpg.Connection, schema: str, expected: int, received: Callable[[], int], say: Callable[[str], None]
) -> list[str]:
    """After the drain (untimed): every notice of a webhook subscriber delivered once to the receiver."""
    deadline = time.monotonic() + 60 + expected / WEBHOOK_RATE
    pending, delivered, failed = await _deliveries(conn, schema)
    while (pending or received() < expected) and time.monotonic() < deadline:
        say(f"communication: {pending:,} webhook deliveries pending, {received():,} received")
        await asyncio.sleep(2)
        pending, delivered, failed = await _deliveries(conn, schema)
    problems = []
    if (delivered, failed) != (expected, 0):
        problems.append(f"webhooks delivered={delivered} failed={failed} pending={pending}, expected {expected}")
    if received() != expected:
        problems.append(f"the receiver got {received()} notices, expected {expected}")
    return problems


async def _deliveries(conn: asyncpg.Connection, schema: str) -> tuple[int, int, int]:
    rows = await conn.fetch(f"SELECT status, count(*) AS n FROM {schema}.webhook_deliveries GROUP BY status")
    found = {row["status"]: int(row["n"]) for row in rows}
    return found.get("pending", 0), found.get("delivered", 0), found.get("failed", 0)
