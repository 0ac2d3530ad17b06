"""The outbox: rows written inside business transactions, relayed to Kafka by an idempotent producer.

Guarantees, and how they are kept:
- nothing is skipped: the relay reads every row still in the table (it keeps no high-water mark), and deletes
  a row only after Kafka acknowledged it;
- per-key order: rows are sent in id order, and only rows of transactions older than every transaction still
  running (`xid < pg_snapshot_xmin`), so a sequence value that commits late cannot be overtaken;
- at most duplicates: a relay that dies between Kafka's ack and the delete sends those rows again, and the
  consumers' inbox absorbs them;
- one relay per service: the relay holds an advisory lock; a replica without it waits and takes over. The lock
  lives on the LISTEN connection: when that connection is lost (a Postgres restart) the relay stops draining
  and takes the lead again, as another replica may have taken it meanwhile.

Test hook: with `FIVECOGS_CHAOS_RELAY_EXIT_AFTER_PUBLISH=<n>` in its environment, the process exits (code 137,
as after kill -9) right after Kafka acknowledged the relay's n-th batch and before that batch's rows are deleted:
the fault suite (`fivecogs faults`) uses it to prove the "duplicates at most" promise. Never set it in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from fivecogs_shared.db import Connection
from fivecogs_shared.uow import OutgoingRecord

log = structlog.get_logger()

CHAOS_EXIT_AFTER_PUBLISH = "FIVECOGS_CHAOS_RELAY_EXIT_AFTER_PUBLISH"
CHAOS_EXIT_CODE = 137
DRAIN_TIMEOUT_SECONDS = 15.0
PRODUCE_TIMEOUT_SECONDS = 10.0


def notify_channel(schema: str) -> str:
    return f"fivecogs_outbox_{schema}"


async def write(conn: Connection, records: list[OutgoingRecord]) -> None:
    if not records:
        return
    await conn.executemany(
        "INSERT INTO outbox (topic, key, value, header_names, header_values) VALUES ($1, $2, $3, $4, $5)",
        [
            (r.topic, r.key, r.value, [name for name, _ in r.headers], [value for _, value in r.headers])
            for r in records
        ],
    )
    # Delivered at commit, so the relay wakes only for rows it can see. The pool's search_path is the schema.
    await conn.execute("SELECT pg_notify($1 || current_schema(), '')", notify_channel(""))


async def backlog(conn: Connection) -> tuple[int, float]:
    """Unsent rows and the age in seconds of the oldest."""
    row = await conn.fetchrow(
        "SELECT count(*) AS rows, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age FROM outbox"
    )
    assert row is not None
    return int(row["rows"]), float(row["age"])


class OutboxRelay:
    def __init__(
        self, *, dsn: str, pool: asyncpg.Pool, schema: str, bootstrap: str, batch: int, poll_seconds: float
    ) -> None:
        self.dsn, self.pool, self.schema = dsn, pool, schema
        self.bootstrap, self.batch, self.poll_seconds = bootstrap, batch, poll_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.sent_total = 0
        self.is_leader = False
        self.batches_published = 0
        self._exit_after = int(os.environ.get(CHAOS_EXIT_AFTER_PUBLISH) or 0)  # the test hook; 0: off

    async def run(self) -> None:
        """Until stopped: take the lead, then drain whenever woken by NOTIFY or the poll interval."""
        while not self._stopping.is_set():
            try:
                await self._lead()
            except (OSError, KafkaError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                # Broker or database gone, or a drain that hung: rows stay in the outbox until both answer again.
                log.warning("outbox relay interrupted; retrying", error=repr(error))
                self.is_leader = False
                await self._sleep(min(5.0, self.poll_seconds * 2))
            except Exception:
                # A relay that dies silently stops the whole chain downstream: never let it.
                log.exception("outbox relay failed; restarting it")
                self.is_leader = False
                await self._sleep(min(5.0, self.poll_seconds * 2))

    async def stop(self) -> None:
        """Flush what is committed, then end `run`."""
        self._stopping.set()
        self._wake.set()

    async def _lead(self) -> None:
        listener = await asyncpg.connect(self.dsn)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_request_size=2 * 1024 * 1024,
            # A produce request that gets no answer (seen now and then right after a broker start) fails after
            # this instead of aiokafka's 40 s; the rows are sent again by the next drain.
            request_timeout_ms=int(PRODUCE_TIMEOUT_SECONDS * 1000),
        )
        try:
            await self._acquire_lead(listener)
            await listener.add_listener(notify_channel(self.schema), self._on_notify)
            await producer.start()
            self.is_leader = True
            log.info("outbox relay leads", schema=self.schema)
            while True:
                if listener.is_closed():  # the advisory lock went with it: lead again before draining more
                    raise asyncpg.InterfaceError("the relay's LISTEN connection was lost")
                # Read before draining: a drain that began before `stop` may have missed the rows the last batch
                # committed just before it, so after `stop` one more drain runs (the flush SIGTERM promises).
                stopping = self._stopping.is_set()
                async with asyncio.timeout(DRAIN_TIMEOUT_SECONDS):  # a hung send or pool: start over, cleanly
                    await self.drain(producer)
                if stopping:
                    return
                await self._sleep(self.poll_seconds)
        finally:
            self.is_leader = False
            # stop() waits for batches still in flight: bounded, so that a hung send cannot hold the relay.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), PRODUCE_TIMEOUT_SECONDS)
            with contextlib.suppress(Exception):
                await listener.close()

    async def _acquire_lead(self, conn: Connection) -> None:
        key = int.from_bytes(hashlib.sha256(f"relay:{self.schema}".encode()).digest()[:8], "big", signed=True)
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            if self._stopping.is_set():
                raise asyncio.CancelledError
            await self._sleep(self.poll_seconds)

    async def drain(self, producer: AIOKafkaProducer) -> int:
        sent = 0
        while True:
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT id, topic, key, value, header_names, header_values FROM outbox "
                    "WHERE xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY id LIMIT $1",
                    self.batch,
                )
            if not rows:
                return sent
            # Sends are queued in id order; the idempotent producer keeps that order per partition.
            futures = [
                await producer.send(
                    row["topic"],
                    value=bytes(row["value"]),
                    key=bytes(row["key"]) if row["key"] is not None else None,
                    headers=list(zip(row["header_names"], [bytes(v) for v in row["header_values"]], strict=True)),
                )
                for row in rows
            ]
            await asyncio.gather(*futures)
            self._chaos_after_publish()
            async with self.pool.acquire() as conn:
                await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [row["id"] for row in rows])
            sent += len(rows)
            self.sent_total += len(rows)
            if len(rows) < self.batch:
                return sent

    def _chaos_after_publish(self) -> None:
        """The test hook (see the module's docstring): die between Kafka's ack and the DELETE."""
        self.batches_published += 1
        if self._exit_after and self.batches_published >= self._exit_after:
            log.warning("chaos: relay exits between publishing and deleting", batches=self.batches_published)
            os._exit(CHAOS_EXIT_CODE)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):  # not wait_for: on 3.11 it can swallow a cancellation
                await self._wake.wait()
        self._wake.clear()
