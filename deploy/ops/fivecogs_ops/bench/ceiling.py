"""The ceiling: the raw pipeline of the services' own design on the same records, with nothing else. aiokafka
`getmany` (the services' default max_batch) → each value parsed once with its contract's model → one asyncpg
transaction per batch that COPYs the inbox rows and the outbox rows (as many per record as the service writes:
for inputs its event and the partner's answer) → one `send()` per outgoing row (acks=all, idempotent), the
futures awaited per batch → offsets committed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from fivecogs_ops.bench.baseline import run_baseline
from fivecogs_ops.bench.context import Bench
from fivecogs_ops.bench.drain import Seeded
from fivecogs_ops.bench.results import StageResult
from fivecogs_ops.bench.scratch import Scratch
from fivecogs_shared.contracts import PARTNER_EVENT_TYPES, events_topic, feedback_topic
from fivecogs_shared.settings import ServiceSettings

MAX_RECORDS: int = ServiceSettings.model_fields["max_batch"].default
IDLE_SECONDS = 30.0  # nothing fetched for this long: the records are not all there
INBOX = ["source", "event_id", "event_type", "digest", "outcome"]
OUTBOX = ["topic", "key", "value", "header_names", "header_values"]
Batch = list[ConsumerRecord[bytes, bytes]]
Row = tuple[Any, ...]


async def ceiling(bench: Bench, seeded: Seeded) -> StageResult:
    async def run(scratch: Scratch, conn: asyncpg.Connection, result: StageResult) -> None:
        await Pipeline(bench, seeded, scratch, conn).run(result.records, result)

    return await run_baseline(bench, seeded, "ceiling", run)


class Pipeline:
    def __init__(self, bench: Bench, seeded: Seeded, scratch: Scratch, conn: asyncpg.Connection) -> None:
        client = bench.cluster.admin.client()
        self.consumer = AIOKafkaConsumer(
            seeded.stage.ingest,
            **client,
            group_id=scratch.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        self.producer = AIOKafkaProducer(**client, acks="all", enable_idempotence=True)
        self.scratch, self.conn = scratch, conn
        self.feedback = feedback_topic(seeded.stage.partner)

    async def run(self, records: int, result: StageResult) -> None:
        """Timed from the first records fetched (the group joined), as a service is from its readiness."""
        await self.consumer.start()
        await self.producer.start()
        try:
            batch = await self._fetch()
            began, cpu, done = time.monotonic(), time.process_time(), 0
            while batch:
                done += await self._apply(batch)
                batch = await self._fetch() if done < records else None
            result.seconds = time.monotonic() - began
            result.cpu_seconds = time.process_time() - cpu
        finally:
            await self.producer.stop()
            await self.consumer.stop()

    async def _fetch(self) -> Batch | None:
        deadline = time.monotonic() + IDLE_SECONDS
        while time.monotonic() < deadline:
            batches = await self.consumer.getmany(timeout_ms=1000, max_records=MAX_RECORDS)
            if batches:
                return [record for part in batches.values() for record in part]
        return None

    async def _apply(self, batch: Batch) -> int:
        inbox: list[Row] = []
        outbox: list[Row] = []
        for record in batch:
            headers = dict(record.headers)
            ce_type, source, event_id = (headers[n].decode() for n in ("ce_type", "ce_source", "ce_id"))
            assert record.value is not None
            data = PARTNER_EVENT_TYPES[ce_type].model.model_validate_json(record.value)
            inbox.append((source, event_id, ce_type, hashlib.sha256(record.value).digest(), "accepted"))
            names, values = list(headers), list(headers.values())
            answer = json.dumps({"event_id": event_id, "event_type": ce_type}).encode()
            outbox.append((events_topic("inputs"), record.key, data.model_dump_json().encode(), names, values))
            outbox.append((self.feedback, record.key, answer, names, values))
        schema = self.scratch.schema
        async with self.conn.transaction():
            await self.conn.copy_records_to_table("inbox", records=inbox, columns=INBOX, schema_name=schema)
            await self.conn.copy_records_to_table("outbox", records=outbox, columns=OUTBOX, schema_name=schema)
        futures = [
            await self.producer.send(self.scratch.topic, value, key=key, headers=list(zip(names, values, strict=True)))
            for _, key, value, names, values in outbox
        ]
        await asyncio.gather(*futures)
        await self.consumer.commit()
        return len(batch)
