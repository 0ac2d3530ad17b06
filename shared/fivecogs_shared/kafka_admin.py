"""Everything fivecogs asks of Kafka's admin side, in one module.

aiokafka marks its admin client experimental and has no ListOffsets call, so both are kept behind these few
functions: topic creation, reachability, committed offsets of a group, and log-end offsets (read through a
group-less consumer, with a timeout because it can hang on a partition that has no leader).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

# Keep the log forever: replays rebuild read models from offset 0.
RETAIN_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    config: tuple[tuple[str, str], ...] = tuple(RETAIN_FOREVER.items())


@contextlib.asynccontextmanager
async def admin_client(bootstrap: str, timeout: float = 10.0) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await asyncio.wait_for(client.start(), timeout)
    try:
        yield client
    finally:
        await client.close()


async def broker_reachable(bootstrap: str, timeout: float = 3.0) -> bool:
    """True when the cluster answers a metadata request within the timeout."""
    try:
        async with admin_client(bootstrap, timeout) as admin:
            await asyncio.wait_for(admin.describe_cluster(), timeout)
    except (KafkaError, OSError, TimeoutError):
        return False
    return True


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], timeout: float = 30.0) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    wanted = {spec.name: spec for spec in specs}
    async with admin_client(bootstrap, timeout) as admin:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(spec.name, spec.partitions, 1, topic_configs=dict(spec.config))
            for name, spec in wanted.items()
            if name not in existing
        ]
        if not missing:
            return
        # Another service may create one between our list and create.
        with contextlib.suppress(TopicAlreadyExistsError):
            await asyncio.wait_for(admin.create_topics(missing), timeout)


async def committed_offsets(bootstrap: str, group_id: str, timeout: float = 10.0) -> dict[TopicPartition, int]:
    """The group's committed offset per partition (partitions it never committed are absent)."""
    async with admin_client(bootstrap, timeout) as admin:
        offsets = await asyncio.wait_for(admin.list_consumer_group_offsets(group_id), timeout)
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def end_offsets(
    bootstrap: str, partitions: Iterable[TopicPartition], timeout: float = 10.0
) -> dict[TopicPartition, int]:
    """Log-end offset per partition, through a consumer that joins no group."""
    wanted = list(partitions)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        result: dict[TopicPartition, int] = await asyncio.wait_for(consumer.end_offsets(wanted), timeout)
    finally:
        await consumer.stop()
    return result


async def topic_partitions(bootstrap: str, topic: str, timeout: float = 10.0) -> list[TopicPartition]:
    async with admin_client(bootstrap, timeout) as admin:
        described = await asyncio.wait_for(admin.describe_topics([topic]), timeout)
    return [TopicPartition(topic, p["partition"]) for t in described for p in t["partitions"]]


@dataclass(frozen=True)
class GroupMember:
    client_id: str
    host: str


@dataclass(frozen=True)
class GroupDescription:
    group_id: str
    state: str  # Empty, Stable, PreparingRebalance, CompletingRebalance, Dead
    members: tuple[GroupMember, ...]


async def describe_group(bootstrap: str, group_id: str, timeout: float = 10.0) -> GroupDescription:
    async with admin_client(bootstrap, timeout) as admin:
        responses = await asyncio.wait_for(admin.describe_consumer_groups([group_id]), timeout)
    group = responses[0].to_object()["groups"][0]
    members = tuple(GroupMember(m["client_id"], m["client_host"]) for m in group["members"])
    return GroupDescription(group_id, str(group["state"]), members)


async def list_groups(bootstrap: str, prefix: str = "", timeout: float = 10.0) -> list[str]:
    async with admin_client(bootstrap, timeout) as admin:
        groups = await asyncio.wait_for(admin.list_consumer_groups(), timeout)
    return sorted(str(group_id) for group_id, _ in groups if str(group_id).startswith(prefix))


async def reset_group_offsets(
    bootstrap: str, group_id: str, offsets: dict[TopicPartition, int], timeout: float = 10.0
) -> None:
    """Commit the given offsets for a group that has no active member (Kafka refuses it otherwise)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        consumer.assign(list(offsets))  # manual assignment: commits without joining the group
        await asyncio.wait_for(consumer.commit(offsets), timeout)
    finally:
        await consumer.stop()
