"""Step 5: orders, in waves. Orders have different keys, so the chain may take two orders of one wave in any
order; a product therefore appears in at most one order per wave, and stock and FIFO stay predictable."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fivecogs_ops.simulate import catalogue
from fivecogs_ops.simulate.cast import CHANNELS, PlannedOrder, PlannedProduct
from fivecogs_ops.simulate.records import Sent, with_value
from fivecogs_ops.simulate.story import Story, at, day_of
from fivecogs_shared.contracts.partner import Channel

PLACED = "th.fivecogs.order.placed.v1"
WAVES = 3


def write_wave(story: Story, wave: int) -> list[Sent]:
    used: set[str] = set()
    moment = at(day_of(7, 1 + wave * 7), 9)
    if wave == 0:
        _margin_orders(story, used, moment)
        _refused_orders(story, used, moment)
    if wave == 1:
        _repeated_orders(story, moment)
    for product in _shuffled(story):
        if product.product_id not in used | story.cast.reserved and product.stock > 0:
            _regular_order(story, product, used, moment)
    return story.writer.take()


def _shuffled(story: Story) -> list[PlannedProduct]:
    products = list(story.cast.products)
    story.rng.shuffle(products)
    return products


def order_data(order: PlannedOrder, moment: datetime, lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "buyer_id": order.buyer_id,
        "channel": order.channel,
        "lines": lines if lines is not None else [_line(p, q, price) for p, q, price in order.lines],
        "placed_at": moment.isoformat(),
    }


def _line(product: PlannedProduct | str, quantity: int | str, price: Decimal | float) -> dict[str, Any]:
    product_id = product if isinstance(product, str) else product.product_id
    return {
        "product_id": product_id,
        "quantity": quantity,
        "unit_price_thb": price if isinstance(price, float) else f"{price:.2f}",
    }


def new_order(story: Story, channel: Channel, lines: list[tuple[PlannedProduct, int, Decimal]]) -> PlannedOrder:
    buyer = f"{story.rng.choice(catalogue.BUYERS)}-{story.rng.randint(1, 40):02d}"
    return PlannedOrder(story.new_id("ord-"), story.rng.choice(catalogue.MARKETS), buyer, channel, lines)


def place(story: Story, order: PlannedOrder, moment: datetime, note: str = "") -> Sent:
    """An order the chain should accept: its stock is taken here as the chain will take it."""
    for product, quantity, _ in order.lines:
        order.taken += product.take(quantity)
    story.cast.accepted_orders.append(order)
    return story.event(PLACED, order_data(order, moment), source=order.source, time=moment, note=note or "an order")


def refuse(
    story: Story, order: PlannedOrder, moment: datetime, lines: list[dict[str, Any]], intent: str, note: str
) -> Sent:
    data = order_data(order, moment, lines)
    return story.event(PLACED, data, source=order.source, time=moment, intent=intent, note=note)


def quantity(story: Story, product: PlannedProduct) -> int:
    """Often exactly enough to empty the oldest batch and take a few units of the next, so FIFO shows."""
    oldest = next(b for b in product.fifo() if b.left > 0)
    if product.stock > oldest.left and story.chance(0.4):
        return oldest.left + story.rng.randint(1, min(5, product.stock - oldest.left))
    return story.rng.randint(1, max(1, min(oldest.left, product.stock // 3)))


def _regular_order(story: Story, first: PlannedProduct, used: set[str], moment: datetime) -> None:
    channels = sorted(first.prices, key=CHANNELS.index)
    if not channels:
        return
    channel: Channel = (
        "local_market" if "local_market" in channels and story.chance(0.5) else story.rng.choice(channels)
    )
    lines = [first]
    companions = [
        p
        for p in _shuffled(story)
        if p is not first and p.product_id not in used | story.cast.reserved and p.stock > 0 and channel in p.prices
    ]
    lines += companions[: story.rng.randint(0, 2)]
    used.update(p.product_id for p in lines)
    order = new_order(story, channel, [(p, quantity(story, p), p.prices[channel]) for p in lines])
    place(story, order, moment + timedelta(minutes=len(story.cast.accepted_orders)))


def _margin_orders(story: Story, used: set[str], moment: datetime) -> None:
    """Orders holding only a below-cost or an at-cost product: settlements with no margin to distribute."""
    for product in story.cast.products:
        if product.pricing != "markup" and "local_market" in product.prices and product.stock > 0:
            used.add(product.product_id)
            units = min(product.stock, story.rng.randint(2, 10))
            order = new_order(story, "local_market", [(product, units, product.prices["local_market"])])
            place(story, order, moment, f"a {product.pricing.replace('_', '-')} sale")


def _refused_orders(story: Story, used: set[str], moment: datetime) -> None:
    """One order refused by each order rule, every one of them on products no other order of the wave holds."""
    free = [p for p in _shuffled(story) if p.product_id not in used and p.stock > 0 and p.prices]
    unlisted = next((p for p in free if len(p.prices) < len(CHANNELS)), None)
    others = [p for p in free if p is not unlisted]
    if unlisted is None or len(others) < 3:
        return
    short, repriced, fixed = others[:3]
    used.update(p.product_id for p in (unlisted, short, repriced, fixed))
    _refuse_one(story, short, moment, "rule:insufficient_stock", "more than is in stock", units=short.stock + 3)
    stale_channel: Channel = next(iter(repriced.old_prices or repriced.prices))
    stale = repriced.old_prices.get(stale_channel) or repriced.prices[stale_channel] + 1
    _refuse_one(
        story,
        repriced,
        moment,
        "rule:price_mismatch",
        "a price that is not the listed one",
        channel=stale_channel,
        price=stale,
    )
    missing = next(c for c in CHANNELS if c not in unlisted.prices)
    _refuse_one(
        story,
        unlisted,
        moment,
        "rule:not_listed",
        f"a product not listed on {missing}",
        channel=missing,
        price=Decimal("50.00"),
    )
    _unknown_product_order(story, unlisted, moment)
    _fixed_order(story, fixed, moment)
    _malformed_orders(story, moment)


def _refuse_one(
    story: Story,
    product: PlannedProduct,
    moment: datetime,
    intent: str,
    note: str,
    *,
    units: int = 1,
    channel: Channel | None = None,
    price: Decimal | None = None,
) -> None:
    on: Channel = channel if channel is not None else next(iter(product.prices))
    price = price if price is not None else product.prices[on]
    order = new_order(story, on, [])
    refuse(story, order, moment, [_line(product, units, price)], intent, note)


def _unknown_product_order(story: Story, product: PlannedProduct, moment: datetime) -> None:
    """A good line, then one for a product nobody produced. The order waits for that product until its wait
    expires and is judged again then: no other order may take the good line's stock meanwhile."""
    story.cast.reserved.add(product.product_id)
    channel = next(iter(product.prices))
    order = new_order(story, channel, [])
    lines = [_line(product, 1, product.prices[channel]), _line(f"{story.tag}-prod-none", 1, Decimal("10.00"))]
    refuse(story, order, moment, lines, "rule:unknown_product", "a line for a product nobody produced")


def _fixed_order(story: Story, product: PlannedProduct, moment: datetime) -> None:
    """Refused for a wrong price, then sent again under the same order id, fixed, with a new event id."""
    channel = next(iter(product.prices))
    order = new_order(story, channel, [(product, 1, product.prices[channel])])
    wrong = [_line(product, 1, product.prices[channel] + Decimal("0.50"))]
    refuse(story, order, moment, wrong, "rule:price_mismatch", "a typo in the price")
    place(story, order, moment + timedelta(minutes=30), "the same order id, fixed")


def _malformed_orders(story: Story, moment: datetime) -> None:
    product = story.cast.products[0]
    channel: Channel = "local_market"
    order = new_order(story, channel, [])
    price = product.prices.get(channel, Decimal("10.00"))

    def bad(lines: list[dict[str, Any]], intent: str, note: str, **changes: Any) -> None:
        data = {**order_data(new_order(story, channel, []), moment, lines), **changes}
        story.event(PLACED, data, source=order.source, time=moment, intent=intent, note=note)

    bad([_line(product, "3", price)], "schema", "a quantity as text")
    bad([_line(product, 1, price), _line(product, 2, price)], "schema", "one product on two lines")
    bad([_line(product, 1, float(price))], "schema", "a price as a JSON float")
    bad([_line(product, 1, price)], "schema", "placed_at without an offset", placed_at="2025-07-01T09:00:00")
    bad([], "schema", "an order without lines")
    many = [_line(f"{story.tag}-prod-{n:05d}", 1, Decimal("10.00")) for n in range(4500)]
    bad(many, "oversized", "4500 lines: over 256 KiB")


def _repeated_orders(story: Story, moment: datetime) -> None:
    placed = [s for s in story.writer.history if s.ce_type == PLACED and s.intent == "accepted"]
    if not placed:
        return
    first, last = placed[0], placed[-1]
    story.again(first, "duplicate", "an order sent twice: a retry")
    again = {**first.data(), "placed_at": moment.isoformat()}
    story.event(
        PLACED,
        again,
        source=first.source,
        time=moment,
        intent="rule:duplicate_order",
        note="an order id used a second time",
    )
    other_buyer = {**last.data(), "buyer_id": "someone-else"}
    story.writer.add(with_value(last, json.dumps(other_buyer).encode(), "conflict", "an event id reused"))
