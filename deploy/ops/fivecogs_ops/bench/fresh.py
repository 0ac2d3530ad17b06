"""Every stage fresh: its own partner (so its own ingest and feedback topics), consumer group and Postgres schema.
The upstream events topics are shared, so the stage's group is committed at the current end of every topic it
subscribes to before anything is seeded: it reads this stage's records only."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from fivecogs_ops import partners
from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts import COGS, dlq_topic, events_topic, ingest_topic
from fivecogs_shared.contracts.topics import subscription_pattern
from fivecogs_shared.kafka_access import KafkaAccess

PARTITIONS_ENV = "FIVECOGS_TOPIC_PARTITIONS"  # the services' setting; the bench's topics get at least 2


def partitions() -> int:
    return max(2, int(os.environ.get(PARTITIONS_ENV) or 3))


@dataclass(frozen=True)
class Stage:
    cog: str
    name: str  # unique in the run, e.g. "inputs", "inputs-large", "chain"
    run: str  # the run's tag (lowercase hex)

    @property
    def tag(self) -> str:
        return f"{self.run}-{self.name}"

    @property
    def partner(self) -> str:
        return f"bench-{self.tag}"

    @property
    def group(self) -> str:
        return f"fivecogs-{self.cog}-bench-{self.tag}"  # services may only join groups `fivecogs-<cog>*`

    @property
    def schema(self) -> str:
        return "bench_" + re.sub(r"[^a-z0-9]", "_", f"{self.tag}_{self.cog}")

    @property
    def ingest(self) -> str:
        return ingest_topic(self.cog, self.partner)

    def env(self) -> dict[str, str]:
        prefix = f"FIVECOGS_{self.cog.upper()}_"
        return {f"{prefix}CONSUMER_GROUP": self.group, f"{prefix}DB_SCHEMA": self.schema}


async def prepare(admin: KafkaAccess, stage: Stage) -> partners.PartnerAccess:
    """The stage's partner, every events topic (with its dead letters), and the group pinned at the ends."""
    access = await partners.add(admin, stage.partner, [stage.cog])
    await ensure_shared_topics(admin)
    await pin_group(admin, stage.group, await subscribed(admin, stage.cog))
    return access


async def ensure_shared_topics(admin: KafkaAccess) -> None:
    """Every cog's events topic and its dead letters, so that groups can be pinned before any service ran."""
    shared = [events_topic(cog) for cog in COGS]
    specs = [kafka_admin.TopicSpec(t, partitions()) for t in shared + [dlq_topic(t) for t in shared]]
    await kafka_admin.ensure_topics(admin, specs)


async def subscribed(admin: KafkaAccess, cog: str) -> list[TopicPartition]:
    """Every partition the cog's service subscribes to (its pattern: all partners' ingest topics too)."""
    pattern = re.compile(subscription_pattern(cog))
    async with kafka_admin.admin_client(admin) as client:
        topics = [t for t in await kafka_admin.list_topics(client) if pattern.fullmatch(t)]
        return await kafka_admin.partitions_of(client, topics)


async def pin_group(admin: KafkaAccess, group: str, partitions: list[TopicPartition]) -> None:
    """Commit the group at the current end of each partition (assign, seek to end, commit)."""
    consumer = AIOKafkaConsumer(**admin.client(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
    finally:
        await consumer.stop()
