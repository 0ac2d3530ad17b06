"""The simulation's model: what fivecogs should answer to every record, and what its report should then say.

It reads each record as the runtime does (`intake`), remembers `(ce_source, ce_id)` per cog as the inboxes do,
and applies the rules (`chain`). Nothing here comes from a service package: the end-to-end test compares
two independent computations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from fivecogs_ops.simulate.chain import Refused, ValueChain
from fivecogs_ops.simulate.figures import Report
from fivecogs_ops.simulate.intake import Reading, read
from fivecogs_ops.simulate.records import ACCEPTED, DUPLICATE, UNAUTHORIZED, Sent
from fivecogs_shared.contracts import partner
from fivecogs_shared.contracts.topics import source_belongs_to

ORDER_PLACED = "th.fivecogs.order.placed.v1"


@dataclass(frozen=True, order=True)
class Answer:
    """One record fivecogs should write on the feedback topic."""

    partner: str  # whose feedback topic it goes to: the partner whose ingest topic the record was on
    kind: str  # "rejected", "order.accepted" or "order.rejected"
    subject: str  # the ce_id answered (rejected), or the order id
    detail: str  # the reason, or an accepted order's total


@dataclass(frozen=True, order=True)
class DeadLetter:
    topic: str
    ident: str  # the record's ce_id, or "key:<key>" when it had none
    kind: str


@dataclass(frozen=True)
class Outcome:
    kind: str  # accepted, duplicate, a dead-letter kind or rule:<name>
    answers: tuple[Answer, ...] = ()
    dead_letter: DeadLetter | None = None


Apply = Callable[[ValueChain, Any, datetime, str], Decimal | None]  # (chain, data, ce_time, ce_source)


def _ignore_time(method: Callable[[ValueChain, Any], Any]) -> Apply:
    def apply(chain: ValueChain, data: Any, _: datetime, __: str) -> Decimal | None:
        result = method(chain, data)
        return result if isinstance(result, Decimal) else None

    return apply


def _listing(chain: ValueChain, data: Any, at: datetime, _: str) -> None:
    chain.list_product(data, at)


def _subscription(chain: ValueChain, data: Any, _: datetime, source: str) -> None:
    chain.subscribe(data, source)


RULES: dict[str, Apply] = {
    "th.fivecogs.enterprise.registered.v1": _ignore_time(ValueChain.register),
    "th.fivecogs.input.delivered.v1": _ignore_time(ValueChain.deliver),
    "th.fivecogs.batch.produced.v1": _ignore_time(ValueChain.produce),
    "th.fivecogs.batch.produced.v2": _ignore_time(ValueChain.produce),  # v1 plus lot and expiry: same rules
    "th.fivecogs.training.completed.v1": _ignore_time(ValueChain.train),
    "th.fivecogs.certification.granted.v1": _ignore_time(ValueChain.certify),
    "th.fivecogs.listing.requested.v1": _listing,
    ORDER_PLACED: _ignore_time(ValueChain.place),
    "th.fivecogs.order.cancelled.v1": _ignore_time(ValueChain.cancel),
    "th.fivecogs.payment.received.v1": _ignore_time(ValueChain.pay),
    "th.fivecogs.subscription.created.v1": _subscription,
    "th.fivecogs.distribution.policy.set.v1": _ignore_time(ValueChain.set_policy),
}


@dataclass
class ChainModel:
    chain: ValueChain = field(default_factory=ValueChain)
    inbox: dict[tuple[str, str, str], bytes] = field(default_factory=dict)  # (cog, source, id) -> fingerprint

    def apply_all(self, records: Iterable[Sent]) -> list[Outcome]:
        return [self.apply(sent) for sent in records]

    def apply(self, sent: Sent) -> Outcome:
        reading = read(sent)
        if isinstance(reading, str):
            return _dead(sent, reading)
        if not source_belongs_to(reading.source, sent.partner):  # before the inbox, as the runtime does
            return Outcome(UNAUTHORIZED, (Answer(sent.partner, "rejected", reading.event_id, UNAUTHORIZED),))
        taken = (reading.cog, reading.source, reading.event_id)
        if taken in self.inbox:
            return Outcome(DUPLICATE) if self.inbox[taken] == reading.fingerprint else _dead(sent, "conflict")
        self.inbox[taken] = reading.fingerprint
        try:
            total = RULES[reading.ce_type](self.chain, reading.data, reading.time, reading.source)
        except Refused as refusal:
            return _refused(sent.partner, reading, refusal.reason)
        if total is None:
            return Outcome(ACCEPTED)
        order = reading.data
        assert isinstance(order, partner.OrderPlaced)
        return Outcome(ACCEPTED, (Answer(sent.partner, "order.accepted", order.order_id, f"{total:.2f}"),))

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
