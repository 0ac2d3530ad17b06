"""The naive subscriber: what one writes first with FastStream 0.7. Per message (non-batch, manual ack): one
transaction (inbox insert + the state row's upsert), its outgoing records published one awaited publish each
(acks=all, idempotent), then the ack (its offset committed). Same records as the ceiling and the service."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any

import asyncpg
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from fivecogs_ops.bench.baseline import run_baseline
from fivecogs_ops.bench.context import Bench
from fivecogs_ops.bench.drain import Seeded
from fivecogs_ops.bench.results import StageResult
from fivecogs_ops.bench.scratch import Scratch
from fivecogs_shared.contracts import PARTNER_EVENT_TYPES

IDLE_SECONDS = 30.0


async def naive(bench: Bench, seeded: Seeded) -> StageResult:
    async def run(scratch: Scratch, conn: asyncpg.Connection, result: StageResult) -> None:
        await Subscriber(bench, seeded, scratch, conn).run(result.records, result)

    return await run_baseline(bench, seeded, "naive", run)


class Subscriber:
    def __init__(self, bench: Bench, seeded: Seeded, scratch: Scratch, conn: asyncpg.Connection) -> None:
        admin = bench.cluster.admin
        self.broker = KafkaBroker(
            admin.bootstrap,
            security=admin.security(),
            acks="all",
            enable_idempotence=True,
            logger=logging.getLogger("fivecogs.bench.naive"),
        )
        self.scratch, self.conn, self.done = scratch, conn, 0
        self.began: tuple[float, float] | None = None
        self.progress = asyncio.Event()
        self.broker.subscriber(
            seeded.stage.ingest, group_id=scratch.group, auto_offset_reset="earliest", ack_policy=AckPolicy.MANUAL
        )(self.handle)

    async def handle(self, body: Any, message: KafkaMessage) -> None:
        if self.began is None:  # timed from the first message, as the ceiling from its first fetch
            self.began = time.monotonic(), time.process_time()
        headers = message.headers
        ce_type, source, event_id = headers["ce_type"], headers["ce_source"], headers["ce_id"]
        data = PARTNER_EVENT_TYPES[ce_type].model.model_validate_json(message.body)
        key = message.raw_message.key  # type: ignore[union-attr]
        schema = self.scratch.schema
        async with self.conn.transaction():
            await self.conn.execute(
                f"INSERT INTO {schema}.inbox (source, event_id, event_type, digest, outcome) "
                "VALUES ($1, $2, $3, $4, 'accepted')",
                source,
                event_id,
                ce_type,
                hashlib.sha256(message.body).digest(),
            )
            await self.conn.execute(
                f"INSERT INTO {schema}.state (key, event_type, body) VALUES ($1, $2, $3) "
                "ON CONFLICT (key) DO UPDATE SET event_type = EXCLUDED.event_type, body = EXCLUDED.body",
                f"{ce_type}:{key.decode() if key else event_id}",
                ce_type,
                data.model_dump_json(),
            )
        answer = json.dumps({"event_id": event_id, "event_type": ce_type}).encode()
        for value in (data.model_dump_json().encode(), answer):
            await self.broker.publish(value, topic=self.scratch.topic, key=key, headers=dict(headers))
        await message.ack()
        self.done += 1
        self.progress.set()

    async def run(self, records: int, result: StageResult) -> None:
        await self.broker.start()
        try:
            while self.done < records:
                self.progress.clear()
                try:
                    await asyncio.wait_for(self.progress.wait(), IDLE_SECONDS)
                except TimeoutError:
                    break
        finally:
            await self.broker.stop()
        if self.began is not None:
            result.seconds = time.monotonic() - self.began[0]
            result.cpu_seconds = time.process_time() - self.began[1]
