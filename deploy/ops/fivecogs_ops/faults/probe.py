"""Looking at the chain while it is being broken: readiness of a service, committed offsets and lag of its group.

Kafka itself goes away during a broker restart, so every look opens its own short-lived clients and answers
None instead of raising when Kafka does not answer: the caller simply looks again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from fivecogs_ops.simulate.catchup import consumed_topics, watched_topics
from fivecogs_shared import kafka_admin

# Every topic of the chain: ingest, events, feedback and dead letters.
CHAIN_TOPICS = watched_topics()

# A transaction of the service that has written and not committed yet: a batch being applied (the relay's
# one-statement DELETE writes too, and is left out).
IN_FLIGHT = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND backend_xid IS NOT NULL "
    "AND state IN ('active', 'idle in transaction') AND query NOT LIKE 'DELETE FROM outbox%'"
)


@dataclass(frozen=True)
class GroupPosition:
    committed: int  # sum of committed offsets over the partitions the group reads
    lag: int  # records written there and not committed yet


async def is_ready(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def group_position(bootstrap: str, cog: str, timeout: float = 5.0) -> GroupPosition | None:
    try:
        async with kafka_admin.admin_client(bootstrap, timeout) as admin:
            partitions = await kafka_admin.partitions_of(admin, consumed_topics(cog), timeout)
            offsets = await asyncio.wait_for(admin.list_consumer_group_offsets(f"fivecogs-{cog}"), timeout)
        ends = await _end_offsets(bootstrap, partitions, timeout)
    except (KafkaError, OSError, TimeoutError):
        return None
    committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    return GroupPosition(
        committed=sum(committed.values()),
        lag=sum(max(0, ends[tp] - committed.get(tp, 0)) for tp in partitions),
    )


async def _end_offsets(bootstrap: str, partitions: list[TopicPartition], timeout: float) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        ends: dict[TopicPartition, int] = await asyncio.wait_for(consumer.end_offsets(partitions), timeout)
        return ends
    finally:
        await consumer.stop()


async def group_members(bootstrap: str, cog: str) -> int | None:
    try:
        return len((await kafka_admin.describe_group(bootstrap, f"fivecogs-{cog}")).members)
    except (KafkaError, OSError, TimeoutError):
        return None


async def until_in_flight(database_url: str, cog: str, timeout: float) -> bool:
    """Wait for a moment when the service is half-way through applying a batch (the moment a crash must roll
    back and hand the batch back uncommitted); False when none came within the timeout, or Postgres is away."""
    try:
        conn = await asyncpg.connect(database_url, timeout=2.0)
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await conn.fetchval(IN_FLIGHT, f"fivecogs-{cog}"):
                return True
            await asyncio.sleep(0.002)
        return False
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    finally:
        await conn.close()


async def outbox_rows(database_url: str, cog: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {cog}.outbox"))
    finally:
        await conn.close()


async def until_leaders(bootstrap: str, topics: list[str], timeout: float = 60.0) -> None:
    """Until every partition of the topics has a leader: right after they were created or the broker started,
    a record sent to a partition without one is refused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with kafka_admin.admin_client(bootstrap, 5.0) as admin:
                described = await asyncio.wait_for(admin.describe_topics(topics), 5.0)
            if all(not t["error_code"] and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
                return
        except (KafkaError, OSError, TimeoutError):
            pass
        await asyncio.sleep(0.25)
    raise TimeoutError(f"partitions without a leader {timeout:.0f}s on")
