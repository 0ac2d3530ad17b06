"""Reading what the chain writes: every record of some topics, from now on or from the very first one.

Records are kept slim (the checks read only topic, position, key, value and headers), and values over 64 KiB
(the oversized poison, copied byte for byte into a DLQ) are dropped: their headers say all the checks need.
The reader rides out broker restarts: it keeps its positions and simply asks again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaError

from fivecogs_shared.kafka_access import KafkaAccess

KEPT_VALUE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Seen:
    """A consumer record, slimmed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp: float = 0.0  # seconds since the epoch, as the broker stamped it

    def header(self, name: str) -> str:
        for header_name, value in self.headers:
            if header_name == name:
                return value.decode(errors="replace")
        return ""


class Collector:
    def __init__(self, kafka: KafkaAccess, topics: Iterable[str], *, from_beginning: bool = False) -> None:
        self.consumer = AIOKafkaConsumer(
            *topics,
            **kafka.client(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self.from_beginning = from_beginning
        self.records: list[Seen] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        await self.consumer.start()
        if not self.from_beginning:
            for partition in self.consumer.assignment():  # pin the end now: nothing published later is missed
                await self.consumer.position(partition)
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.consumer.stop()
        except asyncio.CancelledError:
            # aiokafka's fetcher can leak the cancellation of its own task out of stop(); only a cancellation of
            # ours may go on, or it would hide the error that brought us here.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise

    async def read_to_end(self, timeout: float = 60.0) -> None:
        """Until every record written so far has been read."""
        deadline = time.monotonic() + timeout
        ends = await self.consumer.end_offsets(list(self.consumer.assignment()))
        for partition, end in ends.items():
            while await self.consumer.position(partition) < end:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the collector is still behind on {partition}")
                await asyncio.sleep(0.1)

    async def _collect(self) -> None:
        while True:
            try:
                batches = await self.consumer.getmany(timeout_ms=200)
            except KafkaError:  # the broker is being restarted: positions are kept, ask again
                await asyncio.sleep(0.5)
                continue
            for batch in batches.values():
                self.records.extend(_slim(record) for record in batch)


def _slim(record: ConsumerRecord) -> Seen:
    value: bytes = record.value or b""
    return Seen(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=value if len(value) <= KEPT_VALUE_BYTES else b"",
        headers=tuple((name, bytes(v)) for name, v in record.headers or ()),
        timestamp=(record.timestamp or 0) / 1000,
    )
