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

from fivecogs_ops.simulate.catchup import consumed_topics, watched
from fivecogs_shared import kafka_admin
from fivecogs_shared.kafka_access import KafkaAccess

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


async def group_position(kafka: KafkaAccess, cog: str, timeout: float = 5.0) -> GroupPosition | None:
    try:
        async with kafka_admin.admin_client(kafka, timeout) as admin:
            topics = consumed_topics(cog, await kafka_admin.list_topics(admin, timeout))
            partitions = await kafka_admin.partitions_of(admin, topics, timeout)
            offsets = await asyncio.wait_for(admin.list_consumer_group_offsets(f"fivecogs-{cog}"), timeout)
        ends = await _end_offsets(kafka, partitions, timeout)
    except (KafkaError, OSError, TimeoutError):
        return None
    committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    return GroupPosition(
        committed=sum(committed.values()),
        lag=sum(max(0, ends[tp] - committed.get(tp, 0)) for tp in partitions),
    )


async def _end_offsets(
    kafka: KafkaAccess, partitions: list[TopicPartition], timeout: float
) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**kafka.client(), enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        return await kafka_admin.log_ends(consumer, partitions, timeout)
    finally:
        await consumer.stop()


async def group_members(kafka: KafkaAccess, cog: str) -> int | None:
    try:
        return len((await kafka_admin.describe_group(kafka, f"fivecogs-{cog}")).members)
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


async def until_leaders(kafka: KafkaAccess, topics: list[str] | None = None, timeout: float = 60.0) -> None:
    """Until every partition of the topics (None: all the chain's) has a leader: right after they were created
    or the broker started, a record sent to a partition without one is refused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with kafka_admin.admin_client(kafka, 5.0) as admin:
                if topics is None:
                    topics = [t for t in await kafka_admin.list_topics(admin, 5.0) if watched(t)]
                described = await asyncio.wait_for(admin.describe_topics(topics), 5.0)
            if all(not t["error_code"] and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
                return
        except (KafkaError, OSError, TimeoutError):
            pass
        await asyncio.sleep(0.25)
    raise TimeoutError(f"partitions without a leader {timeout:.0f}s on")
