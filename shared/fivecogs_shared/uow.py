"""The unit of work a handler runs in: one Postgres transaction and the records it will publish.

Outgoing records are written to the outbox in the same transaction as the state change, so an event is
published if and only if the change it describes committed.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel

from fivecogs_shared.batchstate import BatchState
from fivecogs_shared.contracts import events_topic, feedback_topic
from fivecogs_shared.db import Connection
from fivecogs_shared.envelope import Envelope, dump, event_headers
from fivecogs_shared.errors import Awaiting, RuleViolation
from fivecogs_shared.holding import Settling

# Ids of the events we publish derive from the event that caused them: processing the same input again (a
# replay, a redelivery after a crash) publishes the same ids, which every downstream inbox recognises.
_EVENT_ID_NAMESPACE = uuid.UUID("6f1d3a52-5c1e-4f7e-9a55-5fca0c0a1e05")


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class UnitOfWork:
    conn: Connection
    cog: str
    outgoing: list[OutgoingRecord] = field(default_factory=list)
    cause: Envelope | None = None
    partner: str | None = None  # whose ingest topic the cause came from (None: an upstream cog's event)
    rejection: RuleViolation | None = None
    first: int = 0  # where the cause's own records start in `outgoing`
    # References this transaction made known (`known`): the events held for them are applied next.
    provided: list[str] = field(default_factory=list)
    final: bool = False  # the cause's wait has expired: `Awaiting` is now a rejection like any other
    # What became of the transaction's records, by outcome (accepted, held, rejected…): its one log line.
    tally: Counter[str] = field(default_factory=Counter)
    # The same by topic and outcome: the metrics, counted once per batch after it committed.
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    # The service's aggregates for this transaction, when it keeps them in memory (batchstate); else None.
    state: BatchState | None = None
    # A savepoint per event (and the state written after each): the pass that isolates a failing record.
    careful: bool = True
    # What the transaction does to held events (the batch processor's, written before it commits).
    settling: Settling = field(default_factory=Settling)

    @property
    def source(self) -> str:
        return f"fivecogs/{self.cog}"

    def caused_by(self, cause: Envelope, partner: str | None = None, final: bool = False) -> UnitOfWork:
        """The same transaction and outbox, with the event being handled as the cause of what is emitted
        (`final`: its wait is over, it cannot be held again)."""
        return UnitOfWork(
            conn=self.conn,
            cog=self.cog,
            outgoing=self.outgoing,
            cause=cause,
            partner=partner,
            first=len(self.outgoing),
            provided=self.provided,
            final=final,
            tally=self.tally,
            counts=self.counts,
            state=self.state,
            careful=self.careful,
            settling=self.settling,
        )

    def known(self, *references: str) -> None:
        """Say that what others may wait for now exists (`enterprise:E1`): events held for it are applied after
        this one, in the order they arrived."""
        self.provided.extend(references)

    def waits(self, violation: RuleViolation) -> bool:
        """Whether the violation holds the cause rather than rejects it: for handlers that turn violations into
        facts of their own (an order rejected) and must let a wait pass through."""
        return isinstance(violation, Awaiting) and not self.final

    def reject(self, violation: RuleViolation) -> None:
        """Refuse the cause but keep what was emitted so far: for a refusal that is itself a fact others
        need (an order rejected is reported to the buyer and to the chain). Raising `RuleViolation` instead
        undoes everything the handler did."""
        self.rejection = violation

    def emit(self, ce_type: str, data: BaseModel, key: str) -> str:
        """Publish one of this service's domain events on `fivecogs.<cog>.events`, keyed by its aggregate."""
        return self._append(events_topic(self.cog), ce_type, data, key)

    def tell_partner(self, ce_type: str, data: BaseModel) -> str:
        """Publish on the feedback topic of the partner who sent the cause, keyed by its id."""
        assert self.partner is not None, "feedback needs the partner event it answers"
        return self._append(feedback_topic(self.partner), ce_type, data, self.partner)

    def publish_raw(self, record: OutgoingRecord) -> None:
        self.outgoing.append(record)

    def mark(self) -> int:
        return len(self.outgoing)

    def rollback_to(self, mark: int) -> None:
        del self.outgoing[mark:]

    def _append(self, topic: str, ce_type: str, data: BaseModel, key: str) -> str:
        event_id = self._next_event_id(ce_type, key)
        correlation = self.cause.correlation_id if self.cause else event_id
        # The occurrence is the cause's: reusing its time keeps a replay's records identical to the first run's.
        time = self.cause.time if self.cause else None
        headers = event_headers(
            ce_type=ce_type, source=self.source, correlation_id=correlation, event_id=event_id, time=time
        )
        self.outgoing.append(OutgoingRecord(topic, key.encode(), dump(data), headers))
        return event_id

    def _next_event_id(self, ce_type: str, key: str) -> str:
        if self.cause is None:
            return str(uuid.uuid4())
        sequence = len(self.outgoing) - self.first  # the n-th record this cause emits, whatever the batch
        name = f"{self.cog}|{self.cause.source}|{self.cause.id}|{ce_type}|{key}|{sequence}"
        return str(uuid.uuid5(_EVENT_ID_NAMESPACE, name))
