"""The reference pipelines' own tables (ceiling, naive): the services' inbox and outbox, as their migrations
make them, in a scratch schema of the stage; and their outgoing topic."""

from __future__ import annotations

import asyncpg
from aiokafka import TopicPartition

from fivecogs_ops.bench.fresh import Stage, partitions
from fivecogs_ops.bench.kafka import Probe, grown
from fivecogs_shared import kafka_admin
from fivecogs_shared.kafka_access import KafkaAccess

TABLES = """
CREATE TABLE {schema}.outbox (
    id bigserial PRIMARY KEY, topic text NOT NULL, key bytea, value bytea NOT NULL,
    header_names text[] NOT NULL DEFAULT '{{}}', header_values bytea[] NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now(), xid xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE TABLE {schema}.inbox (
    source text NOT NULL, event_id text NOT NULL, event_type text NOT NULL, digest bytea NOT NULL,
    outcome text NOT NULL, received_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (source, event_id)
);
CREATE TABLE {schema}.state (key text PRIMARY KEY, event_type text NOT NULL, body text NOT NULL);
"""


class Scratch:
    def __init__(self, stage: Stage, kind: str) -> None:
        self.schema = f"{stage.schema}_{kind}"
        self.group = f"fivecogs-bench-{stage.tag}-{kind}"
        self.topic = f"bench.{stage.tag}.{kind}"  # outside every pattern a service subscribes to

    async def create(self, conn: asyncpg.Connection, admin: KafkaAccess) -> None:
        await conn.execute(f"CREATE SCHEMA {self.schema}")
        await conn.execute(TABLES.format(schema=self.schema))
        await kafka_admin.ensure_topics(admin, [kafka_admin.TopicSpec(self.topic, partitions())])

    async def count(self, conn: asyncpg.Connection, table: str) -> int:
        return int(await conn.fetchval(f"SELECT count(*) FROM {self.schema}.{table}"))

    async def verify(
        self, conn: asyncpg.Connection, probe: Probe, before: dict[TopicPartition, int], records: int, sent: int
    ) -> list[str]:
        """Every record taken in once, and every outgoing record on the topic."""
        problems = []
        if (found := await self.count(conn, "inbox")) != records:
            problems.append(f"inbox {found}, expected {records}")
        if (published := grown(before, await probe.topic_ends([self.topic]))) != sent:
            problems.append(f"{published} records sent, expected {sent}")
        return problems
