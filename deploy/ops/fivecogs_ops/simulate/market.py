"""Step 4: listings on the six channels, a few replaced at a new price, and listings the channels refuse."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fivecogs_ops.simulate import catalogue
from fivecogs_ops.simulate.cast import CHANNELS, PlannedProduct
from fivecogs_ops.simulate.records import Sent, with_value
from fivecogs_ops.simulate.story import Story, at, day_of
from fivecogs_shared.contracts.partner import Channel

LISTED = "th.fivecogs.listing.requested.v1"
MARKUP = {"markup": (130, 220), "loss": (55, 70), "break_even": (100, 100)}
CHANNEL_FACTOR = {
    "local_market": Decimal("1"),
    "pracharat_market": Decimal("1"),
    "otop_trader": Decimal("1.1"),
    "online": Decimal("1.15"),
    "retail": Decimal("1.25"),
    "tourism": Decimal("1.2"),
}


def write(story: Story) -> list[Sent]:
    plan = {p.product_id: _channels(story, p) for p in story.cast.products}
    _reach_every_channel(story, plan)
    for product in story.cast.products:
        base = _base_price(story, product)
        for number, channel in enumerate(plan[product.product_id]):
            assert product.listed_at is not None
            moment = product.listed_at + timedelta(minutes=number)
            _request(story, product, channel, _channel_price(story, product, channel, base), moment)
            steady = product.pricing == "break_even" and channel == "local_market"
            if channel in product.prices and not steady and story.chance(0.2):
                newer = story.price(product.prices[channel], Decimal(story.rng.randint(90, 115)) / 100)
                if newer != product.prices[channel]:
                    _request(story, product, channel, newer, moment + timedelta(hours=2), "a new price")
    _mischief(story)
    return story.writer.take()


def _channels(story: Story, product: PlannedProduct) -> list[Channel]:
    assert product.listed_at is not None
    chosen: list[Channel] = ["local_market"]
    if story.chance(0.5):
        chosen.append("pracharat_market")
    chosen += [c for c in CHANNELS[2:] if product.may_list(c, product.listed_at) and story.chance(0.65)]
    must = story.cast.must_try.get(product.product_id)
    if must and must not in chosen:
        chosen.append(must)
    return chosen


def _reach_every_channel(story: Story, plan: dict[str, list[Channel]]) -> None:
    for channel in CHANNELS:
        if any(channel in chosen for chosen in plan.values()):
            continue
        for product in story.cast.products:
            assert product.listed_at is not None
            if product.may_list(channel, product.listed_at):
                plan[product.product_id].append(channel)
                break


def _base_price(story: Story, product: PlannedProduct) -> Decimal:
    if product.pricing == "break_even":
        return product.unit_cost_plan
    low, high = MARKUP[product.pricing]
    # Below cost means below the cheapest batch: FIFO may sell any of them.
    cost = product.cheapest_unit_cost() if product.pricing == "loss" else product.unit_cost()
    return story.price(cost, Decimal(story.rng.randint(low, high)) / 100)


def _channel_price(story: Story, product: PlannedProduct, channel: Channel, base: Decimal) -> Decimal:
    if product.pricing == "break_even" and channel == "local_market":
        return base  # exactly its unit cost: a sale without margin
    return story.price(base, CHANNEL_FACTOR[channel])


def listing(story: Story, product: PlannedProduct, channel: str, price: Decimal | float) -> dict[str, Any]:
    return {
        "listing_id": story.new_id("lst-"),
        "product_id": product.product_id,
        "enterprise_id": product.enterprise.enterprise_id,
        "channel": channel,
        "unit_price_thb": price if isinstance(price, float) else f"{price:.2f}",
    }


def _lister(product: PlannedProduct, channel: Channel) -> str:
    if channel in ("otop_trader", "online", "retail"):
        return catalogue.MARKETS[0] if channel == "otop_trader" else catalogue.MARKETS[1]
    if channel == "pracharat_market":
        return catalogue.pracharat_company(product.enterprise.province)
    return catalogue.cdd_office(product.enterprise.province)


def _request(
    story: Story, product: PlannedProduct, channel: Channel, price: Decimal, moment: datetime, note: str = ""
) -> None:
    allowed = product.may_list(channel, moment)
    intent = "accepted" if allowed else "rule:certification_required"
    story.event(
        LISTED,
        listing(story, product, channel, price),
        source=_lister(product, channel),
        time=moment,
        intent=intent,
        note=note or f"listing on {channel}",
    )
    if allowed:
        if channel in product.prices:
            product.old_prices[channel] = product.prices[channel]
        product.prices[channel] = price


def _mischief(story: Story) -> None:
    cast = story.cast
    when = at(day_of(6, 30), 10)
    a, b = cast.enterprises[0], cast.enterprises[1]
    product = a.products[0]
    source = catalogue.cdd_office(a.province)

    def attempt(data: dict[str, Any], intent: str, note: str) -> Sent:
        return story.event(LISTED, data, source=source, time=when, intent=intent, note=note)

    unready = next((p for p in cast.products if not p.may_list("retail", when)), None)
    if unready:
        attempt(
            listing(story, unready, "retail", Decimal("99.00")),
            "rule:certification_required",
            "retail without TCPS or four OTOP stars",
        )
    not_tourism = next((p for p in cast.products if p.enterprise.sector != "community_tourism"), product)
    attempt(
        listing(story, not_tourism, "tourism", Decimal("450.00")),
        "rule:certification_required",
        "tourism for an enterprise outside community tourism",
    )
    ghostly = {**listing(story, product, "local_market", Decimal("10.00")), "enterprise_id": cast.ghost_enterprise}
    attempt(ghostly, "rule:unknown_enterprise", "a listing for an unregistered enterprise")
    nothing = {**listing(story, product, "local_market", Decimal("10.00")), "product_id": f"{story.tag}-prod-none"}
    attempt(nothing, "rule:unknown_product", "a product nobody produced")
    borrowed = {**listing(story, product, "local_market", Decimal("10.00")), "enterprise_id": b.enterprise_id}
    attempt(borrowed, "rule:unknown_product", "another enterprise's product")
    attempt(listing(story, product, "local_market", 120.5), "schema", "a price as a JSON float")
    attempt(listing(story, product, "facebook", Decimal("10.00")), "schema", "a channel that does not exist")
    attempt(listing(story, product, "local_market", Decimal("0")), "schema", "a free product")
    _repeats(story)


def _repeats(story: Story) -> None:
    listed = [s for s in story.writer.written if s.ce_type == LISTED and s.intent == "accepted"]
    story.again(listed[0], "duplicate", "a listing sent twice: a retry")
    original = listed[-1]
    dearer = {**original.data(), "unit_price_thb": f"{Decimal(original.data()['unit_price_thb']) + 1:.2f}"}
    story.writer.add(with_value(original, json.dumps(dearer).encode(), "conflict", "an event id reused"))
