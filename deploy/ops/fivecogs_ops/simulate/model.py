"""The simulation's model: what fivecogs should answer to every record, and what its report should then say.

It reads each record as the runtime does (`intake`), remembers `(ce_source, ce_id)` per cog as the inboxes do,
and applies the rules (`chain`). Nothing here comes from a service package: the end-to-end test compares
two independent computations.

An event that refers to something not applied yet is held, as the services hold it: per cog, with the reference
it awaits; when an accepted event makes that reference known, the events held for it are applied again in the
order they arrived (and those held for what they in turn make known, round after round, as the services do).
What is still held at the end (`finish`) is judged once more and refused with the rule it then breaks: its wait
expired. So the outcome of a record is final only after `finish` (`apply_all` does both).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from fivecogs_ops.simulate.chain import INPUTS, KNOWLEDGE, MARKETING, Awaited, Refused, ValueChain
from fivecogs_ops.simulate.figures import Report
from fivecogs_ops.simulate.intake import Reading, read
from fivecogs_ops.simulate.records import ACCEPTED, DUPLICATE, UNAUTHORIZED, Sent
from fivecogs_shared.contracts import partner
from fivecogs_shared.contracts.topics import source_belongs_to

ORDER_PLACED = "th.fivecogs.order.placed.v1"
HELD = "held"  # not an outcome: what `apply` says of an event that waits (its final outcome comes later)
RELEASE_ORDER = (INPUTS, KNOWLEDGE, MARKETING)  # downstream last: what a cog makes known flows down the chain


@dataclass(frozen=True, order=True)
class Answer:
    """One record fivecogs should write on the feedback topic."""

    partner: str  # whose feedback topic it goes to: the partner whose ingest topic the record was on
    kind: str  # "accepted", "rejected", "order.accepted" or "order.rejected"
    subject: str  # the ce_id answered (accepted, rejected), or the order id
    detail: str  # the event type (accepted), the reason (rejected), or an accepted order's total


@dataclass(frozen=True, order=True)
class DeadLetter:
    topic: str
    ident: str  # the record's ce_id, or "key:<key>" when it had none
    kind: str


@dataclass(frozen=True)
class Outcome:
    kind: str  # accepted, duplicate, a dead-letter kind or rule:<name>; "held" from `apply` while it waits
    answers: tuple[Answer, ...] = ()
    dead_letter: DeadLetter | None = None
    awaits: str = ""  # held: the reference it waits for, and the rule it breaks until then (`reason`)
    reason: str = ""


@dataclass
class Held:
    """An event the model holds, as a service's `held` table does."""

    index: int  # its place among the records applied (`ChainModel.outcomes`)
    cog: str
    partner: str
    reading: Reading
    awaits: str
    reason: str


Apply = Callable[[ValueChain, Any, datetime, str], Decimal | None]  # (chain, data, ce_time, ce_source)


def _ignore_time(method: Callable[[ValueChain, Any], Any]) -> Apply:
    def apply(chain: ValueChain, data: Any, _: datetime, __: str) -> Decimal | None:
        result = method(chain, data)
        return result if isinstance(result, Decimal) else None

    return apply


def _timed(method: Callable[[ValueChain, Any, datetime], Any]) -> Apply:
    def apply(chain: ValueChain, data: Any, at: datetime, __: str) -> None:
        method(chain, data, at)

    return apply


def _subscription(chain: ValueChain, data: Any, _: datetime, source: str) -> None:
    chain.subscribe(data, source)


RULES: dict[str, Apply] = {
    "th.fivecogs.enterprise.registered.v1": _ignore_time(ValueChain.register),
    "th.fivecogs.input.delivered.v1": _ignore_time(ValueChain.deliver),
    "th.fivecogs.batch.produced.v1": _ignore_time(ValueChain.produce),
    "th.fivecogs.batch.produced.v2": _ignore_time(ValueChain.produce),  # v1 plus lot and expiry: same rules
    "th.fivecogs.training.completed.v1": _ignore_time(ValueChain.train),
    "th.fivecogs.certification.granted.v1": _ignore_time(ValueChain.certify),
    "th.fivecogs.listing.requested.v1": _timed(ValueChain.list_product),  # certificates valid on its ce_time
    ORDER_PLACED: _ignore_time(ValueChain.place),
    "th.fivecogs.order.cancelled.v1": _ignore_time(ValueChain.cancel),
    "th.fivecogs.payment.received.v1": _timed(ValueChain.pay),  # settled at its ce_time
    "th.fivecogs.subscription.created.v1": _subscription,
    "th.fivecogs.distribution.policy.set.v1": _timed(ValueChain.set_policy),  # in force from its ce_time
}


@dataclass
class ChainModel:
    chain: ValueChain = field(default_factory=ValueChain)
    inbox: dict[tuple[str, str, str], bytes] = field(default_factory=dict)  # (cog, source, id) -> fingerprint
    outcomes: list[Outcome | None] = field(default_factory=list)  # per record applied; None while held
    held: list[Held] = field(default_factory=list)  # in arrival order
    pending: dict[str, list[str]] = field(default_factory=dict)  # cog -> references made known, not yet released

    def apply_all(self, records: Iterable[Sent]) -> list[Outcome]:
        """The final outcome of every record, in the order given: what is still held at the end expires."""
        for sent in records:
            self.apply(sent)
        return self.finish()

    def apply(self, sent: Sent) -> Outcome:
        """The record's outcome, or a `held` one (its final outcome is in `outcomes` once it is decided)."""
        index = len(self.outcomes)
        self.outcomes.append(None)
        outcome = self._arrive(sent, index)
        if outcome.kind != HELD:
            self.outcomes[index] = outcome
            self._release()
        return outcome

    def finish(self) -> list[Outcome]:
        """Expire what is still held: each is judged once more, in arrival order, and refused with the rule it
        breaks then (what it made known, had it been accepted, is released in turn). All outcomes, in order."""
        while self.held:
            expired = self.held.pop(0)
            self._settle(expired, self._judge(expired.partner, expired.reading, final=True))
            self._release()  # an event judged again may be taken in after all: what it made known is released
        decided = [outcome for outcome in self.outcomes if outcome is not None]
        assert len(decided) == len(self.outcomes)
        return decided

    def _arrive(self, sent: Sent, index: int) -> Outcome:
        reading = read(sent)
        if isinstance(reading, str):
            return _dead(sent, reading)
        if not source_belongs_to(reading.source, sent.partner):  # before the inbox, as the runtime does
            return Outcome(UNAUTHORIZED, (Answer(sent.partner, "rejected", reading.event_id, UNAUTHORIZED),))
        taken = (reading.cog, reading.source, reading.event_id)
        if taken in self.inbox:
            return Outcome(DUPLICATE) if self.inbox[taken] == reading.fingerprint else _dead(sent, "conflict")
        self.inbox[taken] = reading.fingerprint  # a held event is in the inbox too: a copy of it is a duplicate
        judged = self._judge(sent.partner, reading)
        if isinstance(judged, Awaited):
            waiting = Held(index, reading.cog, sent.partner, reading, judged.awaits, judged.reason)
            self.held.append(waiting)  # `held` stays in arrival order: a release keeps an event's place
            return Outcome(HELD, awaits=judged.awaits, reason=judged.reason)
        return judged

    def _judge(self, partner_id: str, reading: Reading, final: bool = False) -> Outcome | Awaited:
        """Apply the event; what it made known is queued for release. `final`: its wait is over."""
        self.chain.provided.clear()
        try:
            total = RULES[reading.ce_type](self.chain, reading.data, reading.time, reading.source)
        except Awaited as waiting:
            self.chain.provided.clear()
            if not final:
                return waiting
            return _refused(partner_id, reading, waiting.reason)
        except Refused as refusal:
            self.chain.provided.clear()
            return _refused(partner_id, reading, refusal.reason)
        for cog, reference in self.chain.provided:
            self.pending.setdefault(cog, []).append(reference)
        self.chain.provided.clear()
        accepted = Answer(partner_id, "accepted", reading.event_id, reading.ce_type)
        if total is None:
            return Outcome(ACCEPTED, (accepted,))
        order = reading.data
        assert isinstance(order, partner.OrderPlaced)
        return Outcome(ACCEPTED, (accepted, Answer(partner_id, "order.accepted", order.order_id, f"{total:.2f}")))

    def _release(self) -> None:
        """As each service does after an event: the events held for what it made known, in arrival order, then
        those held for what they made known, round after round; upstream cogs first."""
        while any(self.pending.values()):
            cog = next(c for c in (*RELEASE_ORDER, *self.pending) if self.pending.get(c))
            references = set(self.pending[cog])
            self.pending[cog].clear()
            for waiting in [h for h in self.held if h.cog == cog and h.awaits in references]:
                judged = self._judge(waiting.partner, waiting.reading)
                if isinstance(judged, Awaited):  # it knew this, it waits for the next thing now
                    waiting.awaits, waiting.reason = judged.awaits, judged.reason
                    continue
                self.held.remove(waiting)
                self._settle(waiting, judged)

    def _settle(self, held: Held, outcome: Outcome | Awaited) -> None:
        assert isinstance(outcome, Outcome)  # never Awaited when final or when it was not held again
        self.outcomes[held.index] = outcome

    def report(self) -> Report:
        """The report fivecogs should serve if it held only what this model was given."""
        return Report.of_provinces(self.chain.province_rows())


def _dead(sent: Sent, kind: str) -> Outcome:
    ident = sent.event_id or f"key:{(sent.key or b'').decode(errors='replace')}"
    answer = Answer(sent.partner, "rejected", sent.event_id, kind)
    return Outcome(kind, (answer,), DeadLetter(f"{sent.topic}.dlq", ident, kind))


def _refused(partner_id: str, reading: Reading, reason: str) -> Outcome:
    answers = [Answer(partner_id, "rejected", reading.event_id, reason)]
    if reading.ce_type == ORDER_PLACED:
        order = reading.data
        assert isinstance(order, partner.OrderPlaced)
        answers.append(Answer(partner_id, "order.rejected", order.order_id, reason))
    return Outcome(reason, tuple(answers))
