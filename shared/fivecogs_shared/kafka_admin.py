"""Everything fivecogs asks of Kafka's admin side, in one module.

aiokafka marks its admin client experimental and has no ListOffsets call, so both are kept behind these few
functions: topic creation and the topic configs fivecogs manages, reachability, committed offsets of a group, and
log-end offsets (read through a group-less consumer, with a timeout because it can hang on a partition that has no
leader).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.protocol.admin import (
    DescribeGroupsRequest_v1,
    DescribeGroupsRequest_v2,
    DescribeGroupsRequest_v3,
    DescribeGroupsResponse_v3,
)
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int8, Int16, Int32, Schema, String

from fivecogs_shared.contracts.topics import max_message_bytes
from fivecogs_shared.kafka_access import KafkaAccess

log = structlog.get_logger()

# Keep the log forever: replays rebuild read models from offset 0. Given at creation only.
RETAIN_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
MAX_MESSAGE_BYTES = "max.message.bytes"


TOPIC_PARTITIONS_ENV = "FIVECOGS_TOPIC_PARTITIONS"
DEFAULT_TOPIC_PARTITIONS = 3
MAX_TOPIC_PARTITIONS = 1000  # more is a typo, not a plan: each partition costs the broker and every consumer


def default_partitions(environ: Mapping[str, str] | None = None) -> int:
    """FIVECOGS_TOPIC_PARTITIONS: how many partitions a fivecogs topic is created with (never changed after, as
    that would move keys to other partitions). More lets more replicas of a service share its backlog."""
    raw = (os.environ if environ is None else environ).get(TOPIC_PARTITIONS_ENV, "").strip()
    if not raw:
        return DEFAULT_TOPIC_PARTITIONS
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= MAX_TOPIC_PARTITIONS:
        raise ValueError(
            f"{TOPIC_PARTITIONS_ENV}={raw[:20]!r}: a whole number of partitions, 1 to {MAX_TOPIC_PARTITIONS}"
        )
    return int(raw)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = field(default_factory=default_partitions)
    config: tuple[tuple[str, str], ...] = tuple(RETAIN_FOREVER.items())  # at creation only
    max_message_bytes: int | None = None  # None: by the topic's kind (contracts.topics.max_message_bytes)

    def managed(self) -> dict[str, str]:
        """The configs `ensure_topics` keeps right on existing topics too; nothing else of theirs is touched."""
        return {MAX_MESSAGE_BYTES: str(self.max_message_bytes or max_message_bytes(self.name))}

    def new_topic(self) -> Any:
        return NewTopic(self.name, self.partitions, 1, topic_configs={**dict(self.config), **self.managed()})


@contextlib.asynccontextmanager
async def admin_client(access: KafkaAccess, timeout: float = 10.0) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(**access.client(), request_timeout_ms=int(timeout * 1000))
    await asyncio.wait_for(client.start(), timeout)
    try:
        yield client
    finally:
        await client.close()


async def broker_reachable(access: KafkaAccess, timeout: float = 3.0) -> bool:
    """True when the cluster answers a metadata request within the timeout."""
    try:
        async with admin_client(access, timeout) as admin:
            await asyncio.wait_for(admin.describe_cluster(), timeout)
    except (KafkaError, OSError, TimeoutError):
        return False
    return True


async def ensure_topics(access: KafkaAccess, specs: Iterable[TopicSpec], timeout: float = 30.0) -> None:
    """Create the topics that do not exist yet, and give existing ones the configs fivecogs manages
    (`TopicSpec.managed`); their other settings, retention among them, stay as they are. Quiet when all is right."""
    wanted = {spec.name: spec for spec in specs}
    async with admin_client(access, timeout) as admin:
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout))
        await _create(admin, [spec for name, spec in wanted.items() if name not in existing], timeout)
        # Only topics that existed before: one another service created a moment ago has these configs already, and
        # describing it at once can fail (UnknownTopicOrPartition) until the broker's metadata has it. The next
        # start aligns it anyway.
        await _align(admin, [spec for name, spec in wanted.items() if name in existing], timeout)


async def _create(admin: AIOKafkaAdminClient, specs: list[TopicSpec], timeout: float) -> set[str]:
    """Create the topics; returns those another client created between our list and create."""
    if not specs:
        return set()
    response = await asyncio.wait_for(admin.create_topics([spec.new_topic() for spec in specs]), timeout)
    raced: set[str] = set()
    for entry in response.to_object()["topic_errors"]:
        if for_code(entry["error_code"]) is TopicAlreadyExistsError:
            raced.add(entry["topic"])
        elif entry["error_code"]:
            raise for_code(entry["error_code"])(f"creating {entry['topic']}: {entry.get('error_message')}")
    return raced


async def _align(admin: AIOKafkaAdminClient, specs: list[TopicSpec], timeout: float) -> None:
    """Set the managed configs of existing topics where they differ, and only those keys."""
    if not specs:
        return
    keys = sorted({key for spec in specs for key in spec.managed()})
    current = await topic_configs(admin, [spec.name for spec in specs], keys, timeout)
    changes = {
        spec.name: {key: value for key, value in spec.managed().items() if current[spec.name].get(key) != value}
        for spec in specs
    }
    changes = {name: configs for name, configs in changes.items() if configs}
    if not changes:
        return
    request = _IncrementalAlterConfigs(
        [
            (ConfigResourceType.TOPIC, name, [(k, _SET, v) for k, v in configs.items()])
            for name, configs in changes.items()
        ]
    )
    response = await asyncio.wait_for(admin._send_request(request), timeout)
    for resource in response.to_object()["responses"]:
        _raise_for(resource, "altering")
    for name, configs in changes.items():
        log.info("topic config set", topic=name, was={k: current[name].get(k) for k in configs}, now=configs)


async def topic_configs(
    admin: AIOKafkaAdminClient, topics: list[str], keys: list[str], timeout: float = 10.0
) -> dict[str, dict[str, str]]:
    """The current value of the given config keys, per topic."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, topic, dict.fromkeys(keys)) for topic in topics]
    found: dict[str, dict[str, str]] = {}
    for response in await asyncio.wait_for(admin.describe_configs(resources), timeout):
        for resource in response.to_object()["resources"]:
            _raise_for(resource, "describing")
            entries = resource["config_entries"]
            found[resource["resource_name"]] = {entry["config_names"]: entry["config_value"] for entry in entries}
    return found


def _raise_for(resource: dict[str, Any], doing: str) -> None:
    if resource["error_code"]:
        error = for_code(resource["error_code"])
        raise error(f"{doing} the config of {resource['resource_name']}: {resource['error_message']}")


# aiokafka 0.14 has no IncrementalAlterConfigs, and its `alter_configs` is the legacy AlterConfigs, which replaces
# a topic's whole dynamic config: setting max.message.bytes through it would reset retention.ms=-1 to the broker's
# default and delete history. Version 0 of the incremental request (Kafka 2.3+) sets only the keys it names.
_SET = 0  # IncrementalAlterConfigs' config_operation: SET (1 DELETE, 2 APPEND, 3 SUBTRACT)


class _IncrementalAlterConfigsResponseV0(Response):  # type: ignore[misc]
    API_KEY = 44
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "responses",
            Array(
                ("error_code", Int16),
                ("error_message", String("utf-8")),
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
            ),
        ),
    )


class _IncrementalAlterConfigsRequestV0(RequestStruct):  # type: ignore[misc]
    API_KEY = 44
    API_VERSION = 0
    RESPONSE_TYPE = _IncrementalAlterConfigsResponseV0
    SCHEMA = Schema(
        (
            "resources",
            Array(
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
                ("configs", Array(("name", String("utf-8")), ("config_operation", Int8), ("value", String("utf-8")))),
            ),
        ),
        ("validate_only", Boolean),
    )


class _IncrementalAlterConfigs(Request[_IncrementalAlterConfigsRequestV0]):  # type: ignore[misc]
    API_KEY = 44

    def __init__(self, resources: list[tuple[int, str, list[tuple[str, int, str]]]]) -> None:
        self.resources = resources

    def build(self, request_struct_class: Any) -> Any:
        return request_struct_class(self.resources, False)


async def committed_offsets(access: KafkaAccess, group_id: str, timeout: float = 10.0) -> dict[TopicPartition, int]:
    """The group's committed offset per partition (partitions it never committed are absent)."""
    async with admin_client(access, timeout) as admin:
        offsets = await asyncio.wait_for(admin.list_consumer_group_offsets(group_id), timeout)
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def end_offsets(
    access: KafkaAccess, partitions: Iterable[TopicPartition], timeout: float = 10.0
) -> dict[TopicPartition, int]:
    """Log-end offset per partition, through a consumer that joins no group."""
    consumer = AIOKafkaConsumer(**access.client(), enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        return await log_ends(consumer, partitions, timeout)
    finally:
        await consumer.stop()


async def log_ends(
    consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition], timeout: float = 10.0
) -> dict[TopicPartition, int]:
    """Log-end offsets through a group-less consumer. The metadata of every topic is fetched in one request
    first: aiokafka would refresh it once per topic it has not seen yet (seconds, with every partner's topics)."""
    wanted = list(partitions)
    client = consumer._client  # aiokafka has no public call to track several topics at once
    await asyncio.wait_for(client.set_topics({tp.topic for tp in wanted} | set(client._topics)), timeout)
    result: dict[TopicPartition, int] = await asyncio.wait_for(consumer.end_offsets(wanted), timeout)
    return result


async def topic_partitions(access: KafkaAccess, topic: str, timeout: float = 10.0) -> list[TopicPartition]:
    async with admin_client(access, timeout) as admin:
        described = await asyncio.wait_for(admin.describe_topics([topic]), timeout)
    return [TopicPartition(topic, p["partition"]) for t in described for p in t["partitions"]]


async def reset_group_offsets(
    access: KafkaAccess, group_id: str, offsets: dict[TopicPartition, int], timeout: float = 10.0
) -> None:
    """Commit the given offsets for a group that has no active member (Kafka refuses it otherwise)."""
    consumer = AIOKafkaConsumer(**access.client(), group_id=group_id, enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        consumer.assign(list(offsets))  # manual assignment: commits without joining the group
        await asyncio.wait_for(consumer.commit(offsets), timeout)
    finally:
        await consumer.stop()


# -- consumer groups ---------------------------------------------------------------------------------------
# aiokafka 0.14's `describe_consumer_groups` cannot read a Kafka 2.3+ answer: it negotiates DescribeGroups v3 but
# decodes it with the v2 layout (no `authorized_operations`) and the connection breaks on "Buffer underrun". The
# request below pairs v3 with its real layout; it is sent through the admin client's own connection.


@dataclass(frozen=True)
class Member:
    client_id: str
    host: str
    partitions: tuple[str, ...]  # "topic/partition" this member owns


@dataclass(frozen=True)
class GroupDescription:
    group: str
    state: str  # Stable, Empty, PreparingRebalance, CompletingRebalance, Dead
    members: tuple[Member, ...]


class _DescribeGroupsV3(DescribeGroupsRequest_v3):  # type: ignore[misc]
    RESPONSE_TYPE = DescribeGroupsResponse_v3


class _DescribeGroups(Request[DescribeGroupsRequest_v1 | DescribeGroupsRequest_v2 | _DescribeGroupsV3]):  # type: ignore[misc]
    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self.groups = groups

    def build(self, request_struct_class: Any) -> Any:
        if request_struct_class.API_VERSION < 3:
            return request_struct_class(self.groups)
        return request_struct_class(self.groups, False)


async def list_groups_with(admin: AIOKafkaAdminClient, timeout: float = 10.0) -> list[str]:
    listed = await asyncio.wait_for(admin.list_consumer_groups(), timeout)
    return sorted(str(group[0]) for group in listed)


async def describe_groups(
    admin: AIOKafkaAdminClient, groups: list[str], timeout: float = 10.0
) -> dict[str, GroupDescription]:
    described: dict[str, GroupDescription] = {}
    for group in groups:  # one coordinator per group: ask each its own
        node = await asyncio.wait_for(admin.find_coordinator(group), timeout)
        response = await asyncio.wait_for(admin._client.send(node, _DescribeGroups([group])), timeout)
        for entry in response.to_object()["groups"]:
            described[entry["group"]] = GroupDescription(
                entry["group"], entry["state"], tuple(_member(m) for m in entry["members"])
            )
    return described


def _member(entry: dict[str, Any]) -> Member:
    owned: list[str] = []
    if entry["member_assignment"]:
        assignment = ConsumerProtocolMemberAssignment.decode(entry["member_assignment"])
        owned = [f"{topic}/{p}" for topic, partitions in assignment.assignment for p in sorted(partitions)]
    return Member(entry["client_id"], entry["client_host"].lstrip("/"), tuple(owned))


async def list_topics(admin: AIOKafkaAdminClient, timeout: float = 10.0) -> list[str]:
    return sorted(await asyncio.wait_for(admin.list_topics(), timeout))


async def partitions_of(admin: AIOKafkaAdminClient, topics: list[str], timeout: float = 10.0) -> list[TopicPartition]:
    if not topics:
        return []
    described = await asyncio.wait_for(admin.describe_topics(topics), timeout)
    return [
        TopicPartition(t["topic"], p["partition"]) for t in described if not t["error_code"] for p in t["partitions"]
    ]


async def describe_group(access: KafkaAccess, group_id: str, timeout: float = 10.0) -> GroupDescription:
    async with admin_client(access, timeout) as admin:
        return (await describe_groups(admin, [group_id], timeout))[group_id]


async def list_groups(access: KafkaAccess, prefix: str = "", timeout: float = 10.0) -> list[str]:
    async with admin_client(access, timeout) as admin:
        return [group for group in await list_groups_with(admin, timeout) if group.startswith(prefix)]
