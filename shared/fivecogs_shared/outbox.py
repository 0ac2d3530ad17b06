"""The outbox: rows written inside business transactions, relayed to Kafka by an idempotent producer.

Guarantees, and how they are kept:
- nothing is skipped: the relay reads every row still in the table (it keeps no high-water mark), and deletes
  a row only after Kafka acknowledged it;
- nothing wedges: a row Kafka refuses for good (larger than its topic or the producer takes, an invalid topic) is
  moved to `outbox_parked` with the error, in the transaction that deletes the rows sent with it, so the rows
  behind it go on; it is kept there, logged, counted (`fivecogs_outbox_parked_total`) and shown by
  `fivecogs dlq list`. Any other failure (broker away, a timeout, a leader moving) parks nothing: what was
  acknowledged or parked is settled, the rest stays in the outbox and the drain starts over;
- per-key order: rows are sent in id order, and ids are taken in commit order: `write` takes the schema's outbox
  lock before the rows get their ids and holds it until the transaction ends, so no row can commit after one with
  a higher id (a transaction of another service, which writes another outbox, holds nothing back). A parked row is
  the one gap: the rows after it on its key are delivered without it. A refusal by the broker leaves the
  producer's sequence for that partition with a hole (every later send there would fail), so the relay replaces
  its producer before it sends again, and the rows that failed behind the refused one are sent again in order;
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
import enum
import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from fivecogs_shared.contracts.topics import (
    DLQ_MAX_MESSAGE_BYTES,
    RECORD_OVERHEAD_BYTES,
    TOPIC_MAX_MESSAGE_BYTES,
    record_bytes,
)
from fivecogs_shared.db import Connection
from fivecogs_shared.envelope import CORRELATION_HEADER
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.metrics import ServiceMetrics
from fivecogs_shared.uow import OutgoingRecord

log = structlog.get_logger()

CHAOS_EXIT_AFTER_PUBLISH = "FIVECOGS_CHAOS_RELAY_EXIT_AFTER_PUBLISH"
CHAOS_EXIT_CODE = 137
DRAIN_TIMEOUT_SECONDS = 15.0
PRODUCE_TIMEOUT_SECONDS = 10.0
# Anything a dead-letter topic takes must pass the producer's own check, which counts a little more than the record.
RELAY_MAX_REQUEST_BYTES = DLQ_MAX_MESSAGE_BYTES + RECORD_OVERHEAD_BYTES
# The producer's batch size. A record larger than it is alone in its batch; a batch of smaller records stays under
# the smallest topic limit (with room for the batch's own overhead), so a size refusal by the broker names one row.
RELAY_BATCH_BYTES = 256 * 1024  # chosen by measurement (docs/operations.md, "Tuning")
RELAY_MAX_BATCH_BYTES = TOPIC_MAX_MESSAGE_BYTES - RECORD_OVERHEAD_BYTES
# Records are queued for a whole batch before the sender runs, so they share requests without lingering.
RELAY_LINGER_MS = 0
# Pauses before looking again at rows that committed while a drain ran: the first, doubled up to the last (or the
# poll interval). Their NOTIFY may have come before the drain's last read.
RECHECK_SECONDS = 0.005
RECHECK_MAX_SECONDS = 0.1

# Refused for good: sending the row again can only fail the same way, so it is parked.
REFUSALS: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,  # over max_request_size (raised by send) or the topic's max.message.bytes (broker)
    RecordTooLargeError,
    RecordListTooLargeError,  # a batch over the broker's segment size
    InvalidTopicError,  # an internal topic, or a name Kafka does not allow
    CorruptRecordException,  # the broker could not validate the record
)
# Kafka's rule for topic names; for any other name aiokafka waits for metadata that never comes.
_LEGAL_TOPIC = re.compile(r"^(?!\.{1,2}$)[a-zA-Z0-9._-]{1,249}$")


def notify_channel(schema: str) -> str:
    return f"fivecogs_outbox_{schema}"


# What `write` fills in; id, created_at and xid take their defaults, as with an INSERT (COPY applies them too).
OUTBOX_COLUMNS = ("topic", "key", "value", "header_names", "header_values")


async def write(conn: Connection, records: list[OutgoingRecord]) -> None:
    """The batch's outgoing records, in order, in the caller's transaction: one binary COPY, one statement for the
    whole batch (docs/operations.md, "Tuning"). The table is found by the pool's search_path."""
    if not records:
        return
    await conn.execute(_IDS_IN_COMMIT_ORDER)
    await conn.copy_records_to_table(
        "outbox",
        columns=OUTBOX_COLUMNS,
        records=[
            (r.topic, r.key, r.value, [name for name, _ in r.headers], [value for _, value in r.headers])
            for r in records
        ],
    )
    # Delivered at commit, so the relay wakes only for rows it can see. The pool's search_path is the schema.
    await conn.execute("SELECT pg_notify($1 || current_schema(), '')", notify_channel(""))


async def parked(conn: Connection) -> int:
    """Rows set aside in `outbox_parked`: refused by Kafka for good, waiting for an operator."""
    return int(await conn.fetchval("SELECT count(*) FROM outbox_parked"))


@dataclass(frozen=True)
class ParkedRow:
    id: int
    topic: str
    key: bytes | None
    bytes: int  # key, value, header names and values (contracts.topics.record_bytes)
    error: str
    parked_at: datetime


async def parked_rows(conn: Connection, limit: int = 200) -> list[ParkedRow]:
    """The oldest parked rows, without their values."""
    rows = await conn.fetch(
        "SELECT id, topic, key, error, parked_at, octet_length(value) + coalesce(octet_length(key), 0)"
        " + (SELECT coalesce(sum(octet_length(n)), 0) FROM unnest(header_names) n)"
        " + (SELECT coalesce(sum(octet_length(v)), 0) FROM unnest(header_values) v) AS size"
        " FROM outbox_parked ORDER BY id LIMIT $1",
        limit,
    )
    return [
        ParkedRow(
            r["id"], r["topic"], None if r["key"] is None else bytes(r["key"]), r["size"], r["error"], r["parked_at"]
        )
        for r in rows
    ]


async def backlog(conn: Connection) -> tuple[int, float]:
    """Unsent rows and the age in seconds of the oldest."""
    row = await conn.fetchrow(
        "SELECT count(*) AS rows, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age FROM outbox"
    )
    assert row is not None
    return int(row["rows"]), float(row["age"])


class Outcome(enum.Enum):
    SENT = "sent"  # acknowledged: delete the row
    REFUSED = "refused"  # refused for good: park the row
    RETRY = "retry"  # anything else: leave the row, the drain starts over


def outcome(result: object) -> Outcome:
    """What a send's result means for its row: its RecordMetadata, or the exception from `send` or its future."""
    if not isinstance(result, BaseException):
        return Outcome.SENT
    return Outcome.REFUSED if isinstance(result, REFUSALS) else Outcome.RETRY


@dataclass
class Published:
    """One batch of rows, row by row, once every send has an answer."""

    sent: list[int] = field(default_factory=list)
    refused: list[tuple[asyncpg.Record, str]] = field(default_factory=list)  # the row and why
    failure: Exception | None = None  # the first transient failure: the rows it concerns stay
    broker_refused: bool = False  # the producer's sequence now has a hole: replace it before sending more

    def add(self, row: asyncpg.Record, result: object, *, from_broker: bool) -> None:
        match outcome(result):
            case Outcome.SENT:
                self.sent.append(row["id"])
            case Outcome.REFUSED:
                assert isinstance(result, KafkaError)
                self.refused.append((row, _refusal(result, from_broker)))
                self.broker_refused |= from_broker
            case Outcome.RETRY:
                if self.failure is None:  # a cancelled send is as transient as a timed-out one
                    self.failure = result if isinstance(result, Exception) else KafkaError(repr(result))


def _refusal(error: KafkaError, from_broker: bool) -> str:
    """The error text kept with a parked row; a broker's error carries no message of its own, only a description."""
    description = "" if error.args else getattr(error, "description", "")
    return f"{'broker' if from_broker else 'producer'} refused: {error}" + (f": {description}" if description else "")


class Drained(enum.Enum):
    """How a batch left the outbox."""

    FULL = "full"  # a whole batch was read: more may be visible at once
    MORE = "more"  # rows committed while it drained: look again soon
    CAUGHT_UP = "caught up"  # nothing left: wait for a NOTIFY or the poll interval


class ProducerSpoiled(Exception):
    """The broker refused a record: the producer's sequence for its partition has a hole."""


# Committed rows, in id order, which is their commit order (`write`).
_VISIBLE_ROWS = "SELECT id, topic, key, value, header_names, header_values FROM outbox ORDER BY id LIMIT $1"
# Held by a transaction from before its outbox rows take their ids until it ends (see the docstring).
_IDS_IN_COMMIT_ORDER = "SELECT pg_advisory_xact_lock(hashtextextended('fivecogs outbox ' || current_schema(), 0))"
_PARK = """
WITH refused AS (SELECT * FROM unnest($1::bigint[], $2::text[]) AS r (id, error)),
moved AS (DELETE FROM outbox o USING refused r WHERE o.id = r.id RETURNING o.*, r.error)
INSERT INTO outbox_parked (id, topic, key, value, header_names, header_values, created_at, xid, error)
SELECT id, topic, key, value, header_names, header_values, created_at, xid, error FROM moved
"""


class OutboxRelay:
    def __init__(
        self,
        *,
        dsn: str,
        pool: asyncpg.Pool,
        schema: str,
        kafka: KafkaAccess,
        batch: int,
        poll_seconds: float,
        metrics: ServiceMetrics | None = None,
        trace: bool = False,  # a line per record Kafka acknowledged (settings.tracing)
        linger_ms: int = RELAY_LINGER_MS,
        batch_bytes: int = RELAY_BATCH_BYTES,
    ) -> None:
        if not 0 < batch_bytes <= RELAY_MAX_BATCH_BYTES:
            raise ValueError(f"a relay batch of {batch_bytes} bytes: 1 to {RELAY_MAX_BATCH_BYTES}")
        self.dsn, self.pool, self.schema = dsn, pool, schema
        self.kafka, self.batch, self.poll_seconds = kafka, batch, poll_seconds
        self.linger_ms, self.batch_bytes = linger_ms, batch_bytes
        self.metrics, self.trace = metrics, trace
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.sent_total = 0
        self.parked_total = 0
        self.is_leader = False
        self.batches_published = 0
        self._exit_after = int(os.environ.get(CHAOS_EXIT_AFTER_PUBLISH) or 0)  # the test hook; 0: off

    async def run(self) -> None:
        """Until stopped: take the lead, then drain whenever woken by NOTIFY or the poll interval; at once again
        after a full batch, and soon after one that left rows committed meanwhile."""
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
        try:
            await self._acquire_lead(listener)
            await listener.add_listener(notify_channel(self.schema), self._on_notify)
            log.info("outbox relay leads", schema=self.schema)
            while not await self._relay(listener):
                log.info("outbox relay replaces its producer after a refusal by the broker", schema=self.schema)
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await listener.close()

    def _producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **self.kafka.client(),
            enable_idempotence=True,
            acks="all",
            linger_ms=self.linger_ms,
            max_request_size=RELAY_MAX_REQUEST_BYTES,
            max_batch_size=self.batch_bytes,
            # A produce request that gets no answer (seen now and then right after a broker start) fails after
            # this instead of aiokafka's 40 s; the rows are sent again by the next drain.
            request_timeout_ms=int(PRODUCE_TIMEOUT_SECONDS * 1000),
        )

    async def _relay(self, listener: asyncpg.Connection) -> bool:
        """Drain with one producer until stopped (True), or until a refusal by the broker spoiled it (False)."""
        producer = self._producer()
        try:
            await producer.start()
            self.is_leader = True
            pause = RECHECK_SECONDS
            while True:
                if listener.is_closed():  # the advisory lock went with it: lead again before draining more
                    raise asyncpg.InterfaceError("the relay's LISTEN connection was lost")
                # Read before draining: a drain that began before `stop` may have missed the rows the last batch
                # committed just before it, so after `stop` one more drain runs (the flush SIGTERM promises).
                stopping, sent_before = self._stopping.is_set(), self.sent_total
                async with asyncio.timeout(DRAIN_TIMEOUT_SECONDS):  # a hung send or pool: start over, cleanly
                    drained = await self.drain_batch(producer)
                if self.sent_total > sent_before:
                    pause = RECHECK_SECONDS
                if drained is Drained.FULL:  # rows keep coming: no pause between batches, however long it runs
                    continue
                if stopping:
                    return True
                if drained is Drained.MORE:  # look again soon, less often while none are sent
                    await self._sleep(pause)
                    pause = min(pause * 2, RECHECK_MAX_SECONDS, self.poll_seconds)
                else:
                    await self._sleep(self.poll_seconds)
        except ProducerSpoiled:
            return False
        finally:
            # stop() waits for batches still in flight: bounded, so that a hung send cannot hold the relay.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), PRODUCE_TIMEOUT_SECONDS)

    async def _acquire_lead(self, conn: Connection) -> None:
        key = int.from_bytes(hashlib.sha256(f"relay:{self.schema}".encode()).digest()[:8], "big", signed=True)
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            if self._stopping.is_set():
                raise asyncio.CancelledError
            await self._sleep(self.poll_seconds)

    async def drain(self, producer: AIOKafkaProducer) -> int:
        """Relay batch by batch until no full batch is left; returns the rows sent (see `drain_batch`)."""
        before = self.sent_total
        while await self.drain_batch(producer) is Drained.FULL:
            pass
        return self.sent_total - before

    async def drain_batch(self, producer: AIOKafkaProducer) -> Drained:
        """Relay one batch of visible rows: acknowledged rows are deleted, refused ones parked. Raises once those
        are settled when a send failed otherwise (the next drain sends the rest again), and ProducerSpoiled after a
        refusal by the broker."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_VISIBLE_ROWS, self.batch)
        if rows:
            published = await self._publish(producer, rows)
            self._chaos_after_publish()
            await self._settle(published)
            self.sent_total += len(published.sent)
            if published.broker_refused:
                raise ProducerSpoiled(f"{len(published.refused)} record(s) refused by the broker")
            if published.failure is not None:
                raise published.failure
        if len(rows) == self.batch:
            return Drained.FULL
        # Rows committed meanwhile (their NOTIFY may have come while this drain ran). Asked after the settle, so
        # none can slip between the two reads.
        async with self.pool.acquire() as conn:
            left = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM outbox)")
        return Drained.MORE if left else Drained.CAUGHT_UP

    async def _publish(self, producer: AIOKafkaProducer, rows: list[asyncpg.Record]) -> Published:
        """Queue the rows in id order (the idempotent producer keeps that order per partition); wait for every
        answer. A row `send` refuses is skipped; any other error there stops the batch, so nothing overtakes it."""
        published = Published()
        queued: list[tuple[asyncpg.Record, asyncio.Future[Any]]] = []
        for row in rows:
            try:
                queued.append((row, await _send(producer, row)))
            except Exception as error:
                published.add(row, error, from_broker=False)
                if published.failure is not None:
                    break
        results = await asyncio.gather(*(future for _, future in queued), return_exceptions=True)
        for (row, _), result in zip(queued, results, strict=True):
            published.add(row, result, from_broker=True)
            if self.trace and not isinstance(result, BaseException):
                log.info("event published", **_published(row, result))
        return published

    async def _settle(self, published: Published) -> None:
        """Delete what Kafka has and park what it refused, in one transaction."""
        if not published.sent and not published.refused:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            if published.sent:
                await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", published.sent)
            if published.refused:
                ids, errors = [row["id"] for row, _ in published.refused], [error for _, error in published.refused]
                await conn.execute(_PARK, ids, errors)
        for row, error in published.refused:
            self._parked(row, error)

    def _parked(self, row: asyncpg.Record, error: str) -> None:
        key = None if row["key"] is None else bytes(row["key"]).decode("utf-8", "replace")[:200]
        headers = zip(row["header_names"], row["header_values"], strict=True)
        size = record_bytes(row["key"], row["value"], headers)
        log.warning(
            "outbox row parked: Kafka refused it", id=row["id"], topic=row["topic"], key=key, bytes=size, error=error
        )
        self.parked_total += 1
        if self.metrics is not None:
            self.metrics.outbox_parked_total.labels(topic=row["topic"]).inc()

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


def _published(row: asyncpg.Record, sent: Any) -> dict[str, object]:
    """The fields of an `event published` line: the event by its headers (a partner's record copied to a
    dead-letter topic has no correlation header: its chain is its own id), and where Kafka put it."""
    headers = dict(zip(row["header_names"], row["header_values"], strict=True))
    event_id, ce_type, chain = (bytes(headers.get(name) or b"").decode("utf-8", "replace") for name in _NAMED)
    named = {"event_id": event_id, "ce_type": ce_type, "correlation_id": chain or event_id}
    return named | {"topic": row["topic"], "partition": sent.partition, "offset": sent.offset}


_NAMED = ("ce_id", "ce_type", CORRELATION_HEADER)


async def _send(producer: AIOKafkaProducer, row: asyncpg.Record) -> asyncio.Future[Any]:
    if not _LEGAL_TOPIC.match(row["topic"]):
        raise InvalidTopicError(f"{row['topic']!r} is not a topic name Kafka allows")
    future: asyncio.Future[Any] = await producer.send(
        row["topic"],
        value=bytes(row["value"]),
        key=bytes(row["key"]) if row["key"] is not None else None,
        headers=list(zip(row["header_names"], [bytes(v) for v in row["header_values"]], strict=True)),
    )
    return future
