"""Knowing when the chain has caught up: every `fivecogs-<cog>` group has committed the end of every topic it
reads, and no topic of the chain (events, feedback, dead letters) has grown for a quiet spell, so nothing is
still on its way through an outbox."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from fivecogs_shared.contracts import COGS
from fivecogs_shared.contracts.topics import subscription_pattern
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.kafka_admin import log_ends

CONSUMED: dict[str, re.Pattern[str]] = {cog: re.compile(subscription_pattern(cog)) for cog in COGS}


def consumed_topics(cog: str, topics: Iterable[str]) -> list[str]:
    """Those of the topics the cog's service reads (by its subscription pattern)."""
    return [topic for topic in topics if CONSUMED[cog].match(topic)]


def watched(topic: str) -> bool:
    """The chain's topics: ingest, events, dead letters and feedback (all begin with `fivecogs.`)."""
    return topic.startswith("fivecogs.")


class CatchUpTimeout(RuntimeError):
    pass


@dataclass(frozen=True)
class Lag:
    by_group: Mapping[str, int]
    quiet_for: float
    outbox: int = 0  # rows the services committed but have not relayed to Kafka yet

    @property
    def total(self) -> int:
        return sum(self.by_group.values())


Progress = Callable[[Lag], None]


class LagWatcher:
    """One admin client and one group-less consumer, kept open while a simulation runs."""

    def __init__(
        self,
        kafka: KafkaAccess,
        timeout: float = 10.0,
        database_url: str | None = None,
        topics: Iterable[str] | None = None,
    ) -> None:
        """`topics`: those a run waits for (its partners' and the events); None: every chain topic there is."""
        self.kafka, self.timeout, self.database_url = kafka, timeout, database_url
        self.topics = sorted(set(topics)) if topics is not None else None
        self.admin = AIOKafkaAdminClient(**kafka.client(), request_timeout_ms=int(timeout * 1000))
        self.consumer = AIOKafkaConsumer(**kafka.client(), enable_auto_commit=False)
        self.partitions: dict[str, list[TopicPartition]] = {}

    async def __aenter__(self) -> LagWatcher:
        await asyncio.wait_for(self.admin.start(), self.timeout)
        await asyncio.wait_for(self.consumer.start(), self.timeout)
        # Every chain topic there is now, unless told which: partners provisioned later are not this run's.
        topics = self.topics or [
            t for t in await asyncio.wait_for(self.admin.list_topics(), self.timeout) if watched(t)
        ]
        described = await asyncio.wait_for(self.admin.describe_topics(topics), self.timeout)
        for topic in described:
            self.partitions[topic["topic"]] = [
                TopicPartition(topic["topic"], p["partition"]) for p in topic["partitions"]
            ]
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def ends(self) -> dict[TopicPartition, int]:
        wanted = [tp for tps in self.partitions.values() for tp in tps]
        return await log_ends(self.consumer, wanted, self.timeout)

    async def lag(self, ends: Mapping[TopicPartition, int]) -> dict[str, int]:
        by_group = {}
        for cog in COGS:
            group = f"fivecogs-{cog}"
            offsets = await asyncio.wait_for(self.admin.list_consumer_group_offsets(group), self.timeout)
            committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            owed = [
                ends[tp] - committed.get(tp, 0)
                for topic, partitions in self.partitions.items()
                if CONSUMED[cog].match(topic)
                for tp in partitions
            ]
            by_group[group] = sum(max(0, n) for n in owed)
        return by_group

    async def outbox_backlog(self) -> int:
        """Unrelayed outbox rows of the five services, when the database is known: a quiet topic alone cannot
        tell a relay that is slow from one that has nothing left to send."""
        if not self.database_url:
            return 0
        conn = await asyncpg.connect(self.database_url)
        try:
            schemas = [
                row["table_schema"]
                for row in await conn.fetch(
                    "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"
                )
                if row["table_schema"] in COGS
            ]
            if not schemas:
                return 0
            counts = " + ".join(f"(SELECT count(*) FROM {schema}.outbox)" for schema in schemas)
            return int(await conn.fetchval(f"SELECT {counts}"))
        finally:
            await conn.close()

    async def wait(
        self, *, timeout: float = 300.0, quiet: float = 2.0, poll: float = 0.25, progress: Progress | None = None
    ) -> float:
        """Seconds it took until every lag was 0 and no watched topic grew for `quiet` seconds."""
        started = time.monotonic()
        previous: dict[TopicPartition, int] = {}
        quiet_since = started
        while True:
            ends = await self.ends()
            by_group = await self.lag(ends)
            backlog = await self.outbox_backlog()
            now = time.monotonic()
            if ends != previous or any(by_group.values()) or backlog:
                quiet_since, previous = now, ends
            lag = Lag(by_group, now - quiet_since, backlog)
            if progress:
                progress(lag)
            if lag.total == 0 and lag.quiet_for >= quiet:
                return now - started
            if now - started > timeout:
                raise CatchUpTimeout(_stuck(lag, timeout))
            await asyncio.sleep(poll)


def _stuck(lag: Lag, timeout: float) -> str:
    behind = ", ".join(f"{group} {n}" for group, n in lag.by_group.items() if n) or "none (topics kept growing)"
    if lag.outbox:
        behind += f"; {lag.outbox} outbox rows not relayed"
    return f"the chain did not catch up within {timeout:.0f}s; records behind: {behind}. Are all five services running?"
