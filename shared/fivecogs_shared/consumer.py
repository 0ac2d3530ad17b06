"""Turning a polled batch of Kafka records into effects, exactly once.

One Postgres transaction per batch: each record is read once (CloudEvents + contract), the batch is checked
against the inbox in one query, and each event is handed to its handler in offset order, with no savepoint. A
service that keeps its aggregates in a `BatchState` has them loaded for the whole batch at once and written
set-wise at its end; a rule violation drops only that event's changes. A batch that fails otherwise, or whose
handler refused after writing (`watched`), is applied again with a savepoint per event (`careful`), which
isolates the record behind it. An event that refers to something not applied yet is held (`holding`) and
applied when that is. Answers to partners, rejections and dead letters are written to the outbox in the same
transaction. The caller commits the Kafka offsets only after this transaction committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import structlog
from pydantic import BaseModel

from fivecogs_shared import holding, inbox, outbox
from fivecogs_shared.batchstate import BatchState
from fivecogs_shared.contracts.feedback import (
    ACCEPTED_TYPE,
    HELD_TYPE,
    REJECTED_TYPE,
    PartnerEventAccepted,
    PartnerEventHeld,
    PartnerEventRejected,
)
from fivecogs_shared.contracts.topics import (
    DLQ_MAX_RECORD_BYTES,
    feedback_topic,
    partner_of_topic,
    record_bytes,
    source_belongs_to,
    subscription_pattern,
)
from fivecogs_shared.db import Connection
from fivecogs_shared.envelope import (
    Envelope,
    EventType,
    RecordLike,
    correlation_of,
    dump,
    event_headers,
    identify,
    read_event,
)
from fivecogs_shared.errors import Awaiting, BadRecord, RuleViolation, Unstorable
from fivecogs_shared.fetching import UndecodableRecord
from fivecogs_shared.metrics import ServiceMetrics, count_batch
from fivecogs_shared.stalls import PartitionHealth
from fivecogs_shared.uow import OutgoingRecord, UnitOfWork
from fivecogs_shared.watched import unwatch, watched, wrote

log = structlog.get_logger()

Handler = Callable[[UnitOfWork, Envelope], Awaitable[None]]
StateFactory = Callable[[Connection], BatchState]

# Errors that say "try again later", not "this record is bad": the whole batch is retried, never skipped.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,  # another backend crashed, or `pg_ctl stop -m immediate`: Postgres restarts
    asyncpg.InsufficientResourcesError,  # too many connections, out of disk or memory: may clear by itself
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)
# asyncpg's own "invalid input for query argument" (an int beyond int32, say) is an InterfaceError too, but
# retrying cannot help it: it is about the record, like the server's DataError.
_CLIENT_DATA_ERROR: type[BaseException] = asyncpg.exceptions._base.DataError


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_ERRORS) and not isinstance(error, _CLIENT_DATA_ERROR)


@dataclass(frozen=True)
class Source:
    """A topic this service consumes: which event types it accepts there, and the partner whose topic it is
    (only that partner's principal can write it, so its records are that partner's)."""

    topic: str
    registry: Mapping[str, EventType]
    partner: str | None = None

    @property
    def from_partners(self) -> bool:
        return self.partner is not None


@dataclass
class Sources:
    """What a service consumes: every partner's ingest topic of its cog, matched by a pattern because partners
    are provisioned while it runs, and the events topics of the cogs upstream."""

    cog: str
    partner_types: Mapping[str, EventType]
    upstream: Mapping[str, Source]
    _partners: dict[str, Source] = field(default_factory=dict)

    def __getitem__(self, topic: str) -> Source:
        if topic in self.upstream:
            return self.upstream[topic]
        if topic not in self._partners:
            partner = partner_of_topic(topic)
            if partner is None or topic.split(".")[1] != self.cog:
                raise KeyError(topic)
            self._partners[topic] = Source(topic, self.partner_types, partner)
        return self._partners[topic]

    def pattern(self) -> str:
        """One anchored regex for the subscription (aiokafka takes topics or a pattern, not both)."""
        return subscription_pattern(self.cog, [topic.split(".")[1] for topic in self.upstream])


@dataclass
class BatchProcessor:
    cog: str
    pool: asyncpg.Pool
    sources: Sources
    handlers: Mapping[str, Handler]
    metrics: ServiceMetrics
    group_id: str
    max_value_bytes: int = 256 * 1024
    backoff_initial: float = 0.2
    backoff_cap: float = 10.0
    retry_budget: float = 60.0
    stall_seconds: float = 30.0
    hold_seconds: float = 300.0  # how long an event may wait for what it refers to
    hold_room: int = 10_000  # how many events of one topic may wait at once; past that, they are rejected
    trace: bool = False  # a line per event applied, held or released (settings.tracing), beside the batch's
    state: StateFactory | None = None  # the service's in-memory aggregates (batchstate); None: SQL per event
    processed: int = field(default=0)

    def __post_init__(self) -> None:
        self.health = PartitionHealth(self.group_id, self.stall_seconds, self.metrics.registry)

    async def process(self, records: Sequence[RecordLike]) -> None:
        """Apply the batch, exactly once. Transient failures are retried (`_retrying`) and, past the budget,
        raised: the caller rewinds the partitions so the batch is fetched again. A batch that fails as a whole
        for any other reason is halved until the record behind it is alone, and that record is dead-lettered:
        no record can hold its partition."""
        await self._settle(records)
        self.health.flowing(records)

    async def _settle(self, records: Sequence[RecordLike], careful: bool = False) -> None:
        try:
            await self._retrying(records, careful=careful)
        except Exception as error:
            if is_transient(error):
                raise
            if not careful:
                # The fast pass met something it cannot undo alone: again, with a savepoint per event.
                log.info("batch applied again event by event", records=len(records), error=repr(error))
                await self._settle(records, careful=True)
                return
            if len(records) == 1:
                await self._retrying(records, failed=error)
                return
            log.warning(
                "batch failed as a whole; halving it to find the record",
                records=len(records),
                partitions=span(records),
                error=repr(error),
            )
            half = len(records) // 2
            for part in (records[:half], records[half:]):  # in order: each partition's records stay in sequence
                await self._settle(part, careful=True)

    async def _retrying(
        self, records: Sequence[RecordLike], failed: Exception | None = None, careful: bool = True
    ) -> None:
        """One transaction for the records (or, with `failed`, the dead letter of the one record that caused it),
        retried with capped exponential backoff while the error is transient, up to `retry_budget` seconds."""
        delay, deadline = self.backoff_initial, time.monotonic() + self.retry_budget
        while True:
            try:
                started = time.perf_counter()
                if failed is None:
                    await self._apply(records, careful)
                else:
                    await self._dead_letter_alone(records[0], failed)
                self.metrics.batch_seconds.observe(time.perf_counter() - started)
                self.processed += len(records)
                return
            except Exception as error:
                self.health.failing(records, error)
                if not is_transient(error):
                    raise
                self.metrics.transient_retries.inc()
                if time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "transient error; retrying batch",
                    error=repr(error),
                    retry_in=round(delay, 2),
                    records=len(records),
                    partitions=span(records),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_cap)

    async def _dead_letter_alone(self, record: RecordLike, error: Exception) -> None:
        """The record that failed its batch on its own: dead-lettered in a transaction of its own."""
        async with self.pool.acquire() as conn, conn.transaction():
            await _own_partitions(conn, self.group_id, [record])
            if _position(record) in await inbox.digests_seen(conn, [_position(record)]):
                return
            source = self.sources[record.topic]
            log.error("record fails its batch; dead-lettered", error=repr(error), **about(record, source))
            uow = UnitOfWork(conn=conn, cog=self.cog)
            bad = _processing_error(record, error)
            self._dead_letter(uow, record, bad, source, internal=repr(error))
            await inbox.record(conn, [_position_entry(record)])
            await outbox.write(conn, uow.outgoing)
        self._counted(uow)

    def _unit(self, conn: Connection, careful: bool) -> UnitOfWork:
        state = self.state(conn) if self.state is not None else None
        return UnitOfWork(conn=conn if careful else watched(conn), cog=self.cog, state=state, careful=careful)

    async def _apply(self, records: Sequence[RecordLike], careful: bool = True) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _own_partitions(conn, self.group_id, records)
            uow = self._unit(conn, careful)
            readings = [self._read(record) for record in records]
            keys = [(r.source, r.id) for r in readings if isinstance(r, Envelope)]
            seen = await inbox.digests_seen(conn, keys + [_position(record) for record in records])
            if uow.state is not None:
                fresh = [r for r in readings if isinstance(r, Envelope) and (r.source, r.id) not in seen]
                await uow.state.prefetch(fresh)
            uow.settling.awaited = await holding.awaited(conn)
            entries: list[inbox.InboxEntry] = []
            for record, reading in zip(records, readings, strict=True):
                if _position(record) in seen:
                    continue  # answered already, before a crash kept its offset from being committed
                source = self.sources[record.topic]
                if isinstance(reading, Envelope) and not _authorized(reading, source):
                    # Before the inbox: a claimed (ce_source, ce_id) must never mark the real owner's event seen.
                    self._refuse_source(uow, record, reading, source)
                    entries.append(_position_entry(record, "unauthorized_source"))
                    continue
                if isinstance(reading, Envelope) and (reading.source, reading.id) not in seen:
                    seen[(reading.source, reading.id)] = reading.digest
                    outcome = await self._take(uow, record, reading, source)
                    if outcome == "ignored":
                        continue
                    if outcome != "processing_error":  # a failed event may be replayed from the DLQ later
                        entries.append(inbox.InboxEntry.of(reading, outcome))
                        continue
                elif isinstance(reading, Envelope) and _repeat(reading, seen, source, record):
                    self._count(uow, record.topic, "duplicate")
                    continue
                else:
                    self._dead_letter(uow, record, _bad_reading(reading, record), source)
                entries.append(_position_entry(record))
            await self._close(uow, entries)
        # Committed: one line for the batch, whatever it held (the events' own lines only when tracing).
        self._counted(uow)
        log.info("batch applied", records=len(records), **uow.tally, partitions=span(records))

    async def _close(self, uow: UnitOfWork, entries: Sequence[inbox.InboxEntry] = ()) -> None:
        """Before commit: the held events waiting for what the batch made known and nobody was known to await
        (another transaction may have held one meanwhile); then every write, set-wise."""
        settling = uow.settling
        uow.provided.extend(sorted(settling.unchecked))
        settling.unchecked.clear()
        settling.awaited = None
        await self._release(uow)
        if uow.state is not None:
            await uow.state.flush()
        await inbox.record(uow.conn, list(entries))
        await settling.flush(uow.conn)
        await outbox.write(uow.conn, uow.outgoing)

    def _counted(self, uow: UnitOfWork) -> None:
        """The metrics of a committed transaction: one increment per topic and outcome."""
        count_batch(self.metrics.events, uow.counts)

    def _read(self, record: RecordLike) -> Envelope | BadRecord:
        if isinstance(record, UndecodableRecord):
            return BadRecord("malformed", record.problem)
        try:
            return read_event(record, self.sources[record.topic].registry, self.max_value_bytes)
        except BadRecord as bad:
            return bad

    async def _take(self, uow: UnitOfWork, record: RecordLike, event: Envelope, source: Source) -> str:
        """Apply an event read for the first time, or hold it; then whatever was held for what it made known."""
        outcome = await self._handle_settled(uow, record, event, source)
        if isinstance(outcome, Awaiting):
            until = await holding.hold(uow.conn, record, event, outcome, self.hold_seconds, self.hold_room)
            if until is not None:
                uow.settling.awaits(outcome.awaits)
                self._tell(uow, record, event.id, HELD_TYPE, _held_notice(event, outcome, until))
                self._count(uow, record.topic, "held")
                if self.trace:
                    log.info("event held", awaits=outcome.awaits, until=str(until), **about(record, source, event))
                return "held"
            # No room left to wait on this topic: its `event rejected` line follows, as the tally's `not_held`.
            self._count(uow, record.topic, "not_held")
            outcome = await self._handle(uow, record, event, source, final=True)  # as if its wait were over
        await self._release(uow)
        assert not isinstance(outcome, Awaiting)
        return outcome

    async def _release(self, uow: UnitOfWork) -> None:
        """Apply, in arrival order, the events held for the references this transaction made known, and those
        held for what they in turn make known. While the batch runs, only references a held event is known to
        await are looked at; the others wait for `_close`, which looks at them all in one query."""
        while uow.provided:
            references = sorted(set(uow.provided))
            uow.provided.clear()
            awaited = uow.settling.awaited
            if awaited is not None:
                uow.settling.unchecked.update(r for r in references if r not in awaited)
                references = [r for r in references if r in awaited]
                if not references:
                    continue
            await self._lock_references(uow.conn, references)
            due = [h for h in await holding.awaiting(uow.conn, references) if h.seq not in uow.settling.released]
            readings = await self._prefetched(uow, due)
            for held, reading in zip(due, readings, strict=True):
                await self._settle_held(uow, held, reading=reading)

    async def _prefetched(self, uow: UnitOfWork, due: Sequence[holding.HeldRecord]) -> list[Envelope | BadRecord]:
        """The held events read again, and what they touch loaded for them all at once."""
        readings = [self._read(held) for held in due]
        if uow.state is not None and due:
            await uow.state.prefetch([r for r in readings if isinstance(r, Envelope)])
        return readings

    async def expire_held(self, limit: int = 200) -> int:
        """Reject the held events whose wait is over, with the reason they would have had; how many."""
        async with self.pool.acquire() as conn, conn.transaction():
            due = await holding.expired(conn, limit)
            uow = self._unit(conn, careful=True)
            for held, reading in zip(due, await self._prefetched(uow, due), strict=True):
                await self._settle_held(uow, held, final=True, reading=reading)
            await self._close(uow)
        self._counted(uow)
        if due:  # each with its own `event rejected` line (`final`)
            log.info("held events judged at the end of their wait", events=len(due), **uow.tally)
        return len(due)

    async def _settle_held(
        self, uow: UnitOfWork, held: holding.HeldRecord, reading: Envelope | BadRecord, final: bool = False
    ) -> None:
        """A held event, read again, applied, held again for another reference, or (`final`) rejected."""
        source = self.sources[held.topic]
        if isinstance(reading, BadRecord):  # the contract changed under it (a new deployment): park it
            self._dead_letter(uow, held, reading, source)
            outcome: str | Awaiting = "dead_lettered"
        else:
            outcome = await self._handle_settled(uow, held, reading, source, final)
        if isinstance(outcome, Awaiting):
            await holding.wait_again(uow.conn, held.seq, outcome)
            uow.settling.awaits(outcome.awaits)
            return
        uow.settling.settled(held, None if outcome == "processing_error" else outcome)
        self._count(uow, held.topic, "released")
        if self.trace:
            log.info("held event released", outcome=outcome, held_for=held.awaits, **about(held, source))

    async def _handle_settled(
        self, uow: UnitOfWork, record: RecordLike, event: Envelope, source: Source, final: bool = False
    ) -> str | Awaiting:
        """`_handle`, with a second look before holding: another partition's transaction may be making the
        reference known right now, unseen by this one. Both take the reference's lock, so whichever comes second
        sees the other's commit (the holder applies the event, or the provider finds it held)."""
        outcome = await self._handle(uow, record, event, source, final)
        locked: set[str] = set()
        while isinstance(outcome, Awaiting) and outcome.awaits not in locked:
            locked.add(outcome.awaits)
            await self._lock_references(uow.conn, [outcome.awaits])
            if uow.state is not None:
                uow.state.refresh(outcome.awaits)  # read again what another transaction may just have committed
            outcome = await self._handle(uow, record, event, source, final)
        return outcome

    async def _lock_references(self, conn: Connection, references: Sequence[str]) -> None:
        keys = sorted(_lock_key(f"reference:{self.cog}:{reference}") for reference in references)
        await conn.execute("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", keys)

    async def _handle(
        self, uow: UnitOfWork, record: RecordLike, event: Envelope, source: Source, final: bool = False
    ) -> str | Awaiting:
        """The handler's outcome: "accepted", "ignored", a rejection reason, "processing_error", or the `Awaiting`
        that holds the event (never when `final`). The partner is answered here, except for a hold."""
        handler = self.handlers.get(event.handled_as)
        if handler is None:  # an upstream event this service has no use for
            self._count(uow, record.topic, "ignored")
            return "ignored"
        mark = uow.mark()
        known = len(uow.provided)
        scoped = uow.caused_by(event, source.partner, final)
        unwatch(uow.conn)
        try:
            async with _savepoint(uow):  # with `careful`: this record's effects only
                await handler(scoped, event)
                if uow.state is not None and uow.careful:
                    await uow.state.flush()  # inside the savepoint: a write this record fails is its own
                elif uow.state is not None:
                    uow.state.keep()
                if scoped.rejection is not None:
                    return self._rejected(uow, record, event, source, scoped.rejection, final)
        except RuleViolation as violation:
            if wrote(uow.conn):  # the fast pass cannot undo what the handler wrote before refusing
                raise WroteBeforeRefusing(f"{event.handled_as} wrote before refusing ({violation.reason})") from None
            _undo(uow, mark, known)
            if isinstance(violation, Awaiting) and not final:
                return violation
            return self._rejected(uow, record, event, source, violation, final)
        except Exception as error:  # a bug or an unforeseen input: park the record, keep the partition moving
            if is_transient(error) or not uow.careful:
                raise  # the fast pass has no savepoint to undo it: the batch is applied again, carefully
            _undo(uow, mark, known)
            log.exception("handler failed; record dead-lettered", **about(record, source, event))
            self._dead_letter(uow, record, _processing_error(record, error), source, internal=repr(error))
            return "processing_error"
        self._count(uow, record.topic, "accepted")
        if self.trace:
            log.info("event applied", emitted=len(uow.outgoing) - mark, **about(record, source, event))
        self._tell(uow, record, event.id, ACCEPTED_TYPE, PartnerEventAccepted(event_id=event.id, event_type=event.type))
        return "accepted"

    def _rejected(
        self, uow: UnitOfWork, record: RecordLike, event: Envelope, source: Source, no: RuleViolation, final: bool
    ) -> str:
        """A rule said no: the partner is told why, and so is the log (`final`: judged without waiting any more,
        as its wait is over or no room was left to hold it)."""
        judged = {"final": True} if final else {}
        log.info("event rejected", reason=no.reason, detail=no.detail, **judged, **about(record, source, event))
        self._tell_rejected(uow, record, event.id, event.type, no.reason, no.detail)
        self._count(uow, record.topic, "rejected")
        return no.reason

    def _count(self, uow: UnitOfWork, topic: str, outcome: str) -> None:
        """The outcome in the transaction's tally (the `batch applied` line) and, once committed, the metrics."""
        uow.tally[outcome] += 1
        uow.counts[topic, outcome] += 1

    def _dead_letter(
        self, uow: UnitOfWork, record: RecordLike, bad: BadRecord, source: Source, internal: str | None = None
    ) -> None:
        """Copy the record byte for byte to `<topic>.dlq`, with headers saying why (`internal`: what operators
        see beyond the partner's reason); a record too large to copy whole is parked as a slice and a hash."""
        value, headers = record.value or b"", list(record.headers or ())
        detail = (internal or bad.detail)[:2000]
        why = self._why(record, bad.kind, detail)
        if record_bytes(record.key, value, headers + why) > DLQ_MAX_RECORD_BYTES:
            value, headers, detail = _slice(record, detail)
            why = self._why(record, bad.kind, detail)
        uow.publish_raw(OutgoingRecord(f"{record.topic}.dlq", record.key, value, headers + why))
        self.metrics.dlq_records.labels(bad.kind).inc()
        self._count(uow, record.topic, "dead_lettered")
        log.warning("record dead-lettered", kind=bad.kind, detail=detail[:300], **about(record, source))
        if source.from_partners:
            _, event_id, event_type = identify(record)
            self._tell_rejected(uow, record, event_id, event_type, bad.kind, bad.detail)

    def _refuse_source(self, uow: UnitOfWork, record: RecordLike, event: Envelope, source: Source) -> None:
        """An event on one partner's topic claiming another's ce_source: its producer (the topic's partner) is
        told; the partner it names never hears of it, and nothing else happens."""
        detail = f"ce_source {event.source!r} is not yours: on this topic it must be 'partner/{source.partner}'"
        log.warning("event claims another partner's source", **about(record, source, event))
        self._count(uow, record.topic, "rejected")
        self._tell_rejected(uow, record, event.id, event.type, "unauthorized_source", detail)

    def _why(self, record: RecordLike, kind: str, detail: str) -> list[tuple[str, bytes]]:
        return [
            ("fivecogs_error_kind", kind.encode()),
            ("fivecogs_error_detail", detail.encode("utf-8", "replace")),
            ("fivecogs_original_topic", record.topic.encode()),
            ("fivecogs_original_partition", str(record.partition).encode()),
            ("fivecogs_original_offset", str(record.offset).encode()),
            ("fivecogs_consumer_group", self.group_id.encode()),
        ]

    def _tell_rejected(
        self, uow: UnitOfWork, record: RecordLike, event_id: str, event_type: str, reason: str, detail: str
    ) -> None:
        if self.sources[record.topic].partner is not None:
            self.metrics.rejections.labels(reason).inc()
        rejected = PartnerEventRejected(event_id=event_id, event_type=event_type, reason=reason, detail=detail)
        self._tell(uow, record, event_id, REJECTED_TYPE, rejected)

    def _tell(self, uow: UnitOfWork, record: RecordLike, event_id: str, ce_type: str, answer: BaseModel) -> None:
        partner = self.sources[record.topic].partner
        if partner is not None:  # an upstream cog's event: there is no partner to answer
            uow.publish_raw(feedback_record(uow, partner, ce_type, answer, event_id, _answer_id(record, ce_type)))


def feedback_record(
    uow: UnitOfWork, partner: str, ce_type: str, answer: BaseModel, event_id: str, answer_id: str | None = None
) -> OutgoingRecord:
    """On the partner's own feedback topic, keyed by its id: its answers stay in order. The correlation id is
    the partner's own ce_id, so each answer names the event it answers."""
    headers = event_headers(
        ce_type=ce_type, source=uow.source, correlation_id=event_id or "unknown", event_id=answer_id
    )
    return OutgoingRecord(feedback_topic(partner), partner.encode(), dump(answer), headers)


def _answer_id(record: RecordLike, ce_type: str) -> str:
    """The same answer to the same record, whenever given (a replay, a redelivery): the same ce_id."""
    return str(uuid.uuid5(_ANSWER_NAMESPACE, f"{record.topic}|{record.partition}|{record.offset}|{ce_type}"))


_ANSWER_NAMESPACE = uuid.UUID("0c0b6a8e-8f51-4d3c-9a57-3b9d7f1e2c44")


def _held_notice(event: Envelope, waiting: Awaiting, until: datetime) -> PartnerEventHeld:
    return PartnerEventHeld(
        event_id=event.id,
        event_type=event.type,
        awaits=waiting.awaits,
        reason=waiting.reason,
        detail=waiting.detail,
        until=until,
    )


class WroteBeforeRefusing(Exception):
    """A handler refused its event after writing: its batch is applied again with a savepoint per event."""


def _savepoint(uow: UnitOfWork) -> contextlib.AbstractAsyncContextManager[object]:
    return uow.conn.transaction() if uow.careful else contextlib.nullcontext()


def _undo(uow: UnitOfWork, mark: int, known: int) -> None:
    """Forget what a refused or failed event did in memory (its savepoint, if any, undid the rest)."""
    uow.rollback_to(mark)
    del uow.provided[known:]
    if uow.state is not None:
        uow.state.drop()


def _authorized(event: Envelope, source: Source) -> bool:
    return source.partner is None or source_belongs_to(event.source, source.partner)


async def _own_partitions(conn: Connection, group_id: str, records: Sequence[RecordLike]) -> None:
    """Serialise the batches of one partition across the processes of a group, until this transaction ends.

    For a moment two processes may both hold a partition: a rebalance while a batch is in flight, a member
    whose session expired but still works. The second waits here until the first has committed, so the inbox
    read that follows sees what the first applied: nothing is applied twice. Keys are taken in one sorted
    order, so two batches cannot deadlock."""
    partitions = {(record.topic, record.partition) for record in records}
    keys = sorted(_lock_key(f"partition:{group_id}:{topic}:{partition}") for topic, partition in partitions)
    await conn.execute("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", keys)


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def about(record: RecordLike, source: Source, event: Envelope | None = None) -> dict[str, object]:
    """The fields of a log line about one record: the event as read (or as far as its headers tell), the partner
    whose topic it came from, and where it sits. Built only for a line that is written."""
    if event is None:
        named = (*identify(record), correlation_of(record))
        ce_source, event_id, ce_type, correlation = (value[:LOGGED_ID_CHARS] for value in named)
    else:
        ce_source, event_id, ce_type, correlation = event.source, event.id, event.type, event.correlation_id
    fields: dict[str, object] = {"event_id": event_id, "ce_type": ce_type, "ce_source": ce_source}
    fields["correlation_id"] = correlation
    if source.partner is not None:
        fields["partner"] = source.partner
    return fields | {"topic": record.topic, "partition": record.partition, "offset": record.offset}


LOGGED_ID_CHARS = 200  # of a header a hostile partner chose: enough for any real id, short enough for a line


def span(records: Sequence[RecordLike]) -> list[str]:
    """Each partition of a batch with its first and last offsets: `topic/partition@first-last`."""
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for record in records:
        where = (record.topic, record.partition)
        first, last = ranges.get(where, (record.offset, record.offset))
        ranges[where] = (min(first, record.offset), max(last, record.offset))
    return [f"{topic}/{partition}@{first}-{last}" for (topic, partition), (first, last) in ranges.items()]


def _processing_error(record: RecordLike, error: Exception) -> BadRecord:
    """What the partner is told: the kind of problem, never our internals (those go to the DLQ headers)."""
    where = f"{record.topic}/{record.partition}@{record.offset}"
    if isinstance(error, asyncpg.DataError | _CLIENT_DATA_ERROR | Unstorable):
        return BadRecord("processing_error", f"a value is outside what fivecogs can store; record {where}")
    return BadRecord("processing_error", f"fivecogs could not process the event; operators can find it as {where}")


DLQ_SLICE_BYTES = 64 * 1024  # of a value too large to be copied whole


def _slice(record: RecordLike, detail: str) -> tuple[bytes, list[tuple[str, bytes]], str]:
    """A record the DLQ cannot hold whole: the start of its value, its ce_* headers, the value's size and hash."""
    value = record.value or b""
    digest = hashlib.sha256(value).hexdigest()
    headers = [(n, v) for n, v in record.headers or () if n.startswith("ce_")][:16]
    headers += [("fivecogs_value_sha256", digest.encode()), ("fivecogs_value_bytes", str(len(value)).encode())]
    note = f"copy truncated to {DLQ_SLICE_BYTES} of {len(value)} value bytes (sha256 {digest}); {detail}"
    return value[:DLQ_SLICE_BYTES], headers, note[:2000]


def _position(record: RecordLike) -> inbox.EventKey:
    """The inbox key of a record by where it sits in the log, for records that carry no usable event id."""
    return (f"@{record.topic}/{record.partition}", str(record.offset))


def _position_entry(record: RecordLike, outcome: str = "dead_lettered") -> inbox.InboxEntry:
    """The inbox entry of a record answered by where it sits: dead-lettered, or refused for its source."""
    source, offset = _position(record)
    digest = hashlib.sha256(record.value or b"").digest()
    return inbox.InboxEntry(source, offset, "dead_letter", digest, outcome)


def _repeat(event: Envelope, seen: dict[inbox.EventKey, bytes], source: Source, record: RecordLike) -> bool:
    """A partner reusing an id for other content is a conflict. Our own services derive event ids from the cause,
    so the same id with other content is a re-emission (a replay after a code change, say): the first applied
    stays, and the repeat has no second effect."""
    if seen[(event.source, event.id)] == event.digest:
        return True
    if not source.from_partners:
        log.info("re-emitted event differs from the one applied; keeping the first", **about(record, source, event))
        return True
    return False


def _bad_reading(reading: Envelope | BadRecord, record: RecordLike) -> BadRecord:
    if isinstance(reading, BadRecord):
        return reading
    copy = (
        f"{record.topic}/{record.partition}@{record.offset}, sha256 {hashlib.sha256(record.value or b'').hexdigest()}"
    )
    detail = (
        f"event id {reading.id!r} from {reading.source!r} was already used for a different event: this copy "
        f"({copy}) is refused, the first one stands"
    )
    return BadRecord("conflict", detail)
