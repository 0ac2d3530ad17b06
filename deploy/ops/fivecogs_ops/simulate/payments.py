"""Steps 6 to 8: orders paid or cancelled (and every wrong way of doing either), then new policies and late orders
that take the cancelled units back out of stock, and their payments."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fivecogs_ops.simulate import catalogue, orders
from fivecogs_ops.simulate.cast import PlannedOrder, PlannedProduct
from fivecogs_ops.simulate.records import Sent, with_value
from fivecogs_ops.simulate.setup import POLICY, REGISTERED, policy_data, registration
from fivecogs_ops.simulate.story import Story, at, day_of
from fivecogs_shared.provinces import TARGET_PROVINCES

PAID = "th.fivecogs.payment.received.v1"
CANCELLED = "th.fivecogs.order.cancelled.v1"
LATE_POLICIES = (("0.40", "0.50", "0.10"), ("0.75", "0.15", "0.10"))

Fate = Callable[[Story, PlannedOrder, datetime], None]


def write_settlements(story: Story) -> list[Sent]:
    """Step 6: every order accepted so far meets a fate; the rare ones first, so each happens at least once."""
    moment = at(day_of(8, 1), 10)
    candidates = [o for o in story.cast.accepted_orders if not _margin_order(o)]
    story.rng.shuffle(candidates)
    for order in story.cast.accepted_orders:
        if _margin_order(order):
            pay(story, order, moment, source=_payer(story, order))
    for fate, order in zip(RARE_FATES, candidates, strict=False):
        fate(story, order, moment)
    for order in candidates[len(RARE_FATES) :]:
        story.rng.choices(COMMON_FATES, weights=(85, 10, 5))[0](story, order, moment)
    _strangers(story, moment)
    return story.writer.take()


def write_late_orders(story: Story) -> list[Sent]:
    """Step 7: two provinces change their policy, two enterprises update their figures, and units returned by
    cancellations are sold again (to the oldest batch first)."""
    moment = at(day_of(9, 1), 9)
    provinces = sorted(TARGET_PROVINCES)[:2]  # not the seed's: see setup.OTHER_POLICIES
    for province, shares in zip(provinces, LATE_POLICIES, strict=False):
        story.event(POLICY, policy_data(province, shares), source=catalogue.cdd_office(province), time=moment)
    for enterprise in story.cast.enterprises[:2]:
        enterprise.households = min(enterprise.members, enterprise.households + story.rng.randint(1, 4))
        story.event(
            REGISTERED,
            registration(enterprise),
            source=catalogue.pracharat_company(enterprise.province),
            time=moment,
            note="newer household figures",
        )
    story.cast.late_orders = []
    used: set[str] = set()
    for product in _returned_first(story):
        if product.product_id in used | story.cast.reserved or product.stock == 0 or not product.prices:
            continue
        used.add(product.product_id)
        channel = next(iter(product.prices))
        order = orders.new_order(story, channel, [(product, orders.quantity(story, product), product.prices[channel])])
        orders.place(story, order, moment, "a late order")
        story.cast.late_orders.append(order)
        if len(story.cast.late_orders) >= 8:
            break
    return story.writer.take()


def write_late_payments(story: Story) -> list[Sent]:
    """Step 8: the late orders are paid, under the provinces' new policies."""
    moment = at(day_of(9, 20), 15)
    for order in story.cast.late_orders:
        pay(story, order, moment, source=_payer(story, order))
    return story.writer.take()


def _returned_first(story: Story) -> list[PlannedProduct]:
    returned = {p.product_id for o in story.cast.cancelled_orders for p, _, _ in o.lines}
    return sorted(story.cast.products, key=lambda p: p.product_id not in returned)


def _margin_order(order: PlannedOrder) -> bool:
    return len(order.lines) == 1 and order.lines[0][0].pricing != "markup"


def payment(story: Story, order: PlannedOrder, amount: Decimal) -> dict[str, Any]:
    return {"payment_id": story.new_id("pay-"), "order_id": order.order_id, "amount_thb": f"{amount:.2f}"}


def pay(
    story: Story,
    order: PlannedOrder,
    moment: datetime,
    intent: str = "accepted",
    note: str = "",
    source: str | None = None,
) -> Sent:
    """Paid through the order's market, unless `source` says who reports the payment."""
    data = payment(story, order, order.total)
    source = source or order.source
    return story.event(PAID, data, source=source, time=moment, intent=intent, note=note or "a payment")


def _payer(story: Story, order: PlannedOrder) -> str:
    """Half the buyers pay the bank directly (it reports the payment), half through their market."""
    return catalogue.PAYMENT_DESK if story.chance(0.5) else order.source


def cancel(story: Story, order: PlannedOrder, moment: datetime, intent: str = "accepted", note: str = "") -> Sent:
    data = {"order_id": order.order_id, "reason": story.rng.choice(("buyer changed their mind", "delivery failed"))}
    if intent == "accepted":
        order.give_back()
        story.cast.cancelled_orders.append(order)
    return story.event(CANCELLED, data, source=order.source, time=moment, intent=intent, note=note or "a cancellation")


def _cancelled_then_paid(story: Story, order: PlannedOrder, moment: datetime) -> None:
    cancel(story, order, moment)
    pay(story, order, moment + timedelta(hours=1), "rule:order_not_open", "paying a cancelled order")


def _cancelled_twice(story: Story, order: PlannedOrder, moment: datetime) -> None:
    cancel(story, order, moment)
    cancel(story, order, moment + timedelta(hours=1), "rule:order_not_open", "cancelling a cancelled order")


def _paid_then_cancelled(story: Story, order: PlannedOrder, moment: datetime) -> None:
    pay(story, order, moment)
    cancel(story, order, moment + timedelta(hours=1), "rule:already_settled", "cancelling a paid order")


def _paid_twice(story: Story, order: PlannedOrder, moment: datetime) -> None:
    pay(story, order, moment)
    pay(story, order, moment + timedelta(hours=1), "rule:already_settled", "a second payment of a paid order")


def _underpaid_then_paid(story: Story, order: PlannedOrder, moment: datetime) -> None:
    short = payment(story, order, order.total - Decimal("0.50"))
    story.event(PAID, short, source=order.source, time=moment, intent="rule:amount_mismatch", note="fifty satang short")
    pay(story, order, moment + timedelta(hours=1), note="the exact total, after a short payment")


def _paid_with_retry(story: Story, order: PlannedOrder, moment: datetime) -> None:
    story.again(pay(story, order, moment), "duplicate", "a payment sent twice: a retry")


def _paid_with_reused_id(story: Story, order: PlannedOrder, moment: datetime) -> None:
    first = pay(story, order, moment)
    changed = {**first.data(), "payment_id": story.new_id("pay-")}
    story.writer.add(with_value(first, json.dumps(changed).encode(), "conflict", "a payment event id reused"))


def _left_open(story: Story, order: PlannedOrder, moment: datetime) -> None:
    """Never paid: no settlement, and its units stay sold."""


def _paid(story: Story, order: PlannedOrder, moment: datetime) -> None:
    pay(story, order, moment, source=_payer(story, order))


def _cancelled(story: Story, order: PlannedOrder, moment: datetime) -> None:
    cancel(story, order, moment)


RARE_FATES: tuple[Fate, ...] = (
    _cancelled_then_paid,
    _cancelled_twice,
    _paid_then_cancelled,
    _paid_twice,
    _underpaid_then_paid,
    _paid_with_retry,
    _paid_with_reused_id,
    _left_open,
    _cancelled,
)
COMMON_FATES: tuple[Fate, ...] = (_paid, _cancelled, _left_open)


def _strangers(story: Story, moment: datetime) -> None:
    source = catalogue.MARKETS[0]
    never = {"payment_id": story.new_id("pay-"), "order_id": f"{story.tag}-ord-never1", "amount_thb": "100.00"}
    story.event(PAID, never, source=source, time=moment, intent="rule:unknown_order", note="paying an unknown order")
    unknown = {"order_id": f"{story.tag}-ord-never2", "reason": "not ours"}
    story.event(
        CANCELLED, unknown, source=source, time=moment, intent="rule:unknown_order", note="cancelling an unknown order"
    )
    floats = {"payment_id": story.new_id("pay-"), "order_id": f"{story.tag}-ord-never3", "amount_thb": 100.5}
    story.event(PAID, floats, source=source, time=moment, intent="schema", note="an amount as a JSON float")
    blank = {"order_id": f"{story.tag}-ord-never4", "reason": ""}
    story.event(CANCELLED, blank, source=source, time=moment, intent="schema", note="a cancellation without reason")
