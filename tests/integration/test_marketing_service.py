"""The marketing service on the real broker and database: upstream facts in, listings and orders from a
partner, FIFO portions out, rejections told three ways, and settlement per enterprise exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest

from fivecogs_marketing.app import DEFINITION
from fivecogs_shared.contracts import events_topic
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.provinces import region_of
from fivecogs_shared.service import Runtime
from tests.support import FEEDBACK, PARTNER, Partner, Tap, data, header, ingest

pytestmark = pytest.mark.integration

INGEST = ingest("marketing")
EVENTS = events_topic("marketing")
LISTING_REQUESTED = "th.fivecogs.listing.requested.v1"
ORDER_PLACED = "th.fivecogs.order.placed.v1"
ORDER_CANCELLED = "th.fivecogs.order.cancelled.v1"
PAYMENT_RECEIVED = "th.fivecogs.payment.received.v1"


class World:
    """Two enterprises with their products' batches, as marketing learns them from inputs and knowledge."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.ent_a, self.ent_b = f"ent-a-{tag}", f"ent-b-{tag}"
        self.balm, self.tea = f"balm-{tag}", f"tea-{tag}"
        self.tag = tag

    def order(self, order_id: str, *lines: tuple[str, int, str]) -> dict[str, Any]:
        return {
            "order_id": order_id,
            "buyer_id": f"buyer-{self.tag}",
            "channel": "local_market",
            "lines": [{"product_id": p, "quantity": q, "unit_price_thb": price} for p, q, price in lines],
            "placed_at": "2025-03-05T10:15:00+07:00",
        }


def _enterprise(enterprise_id: str, province: str, sector: str) -> dict[str, Any]:
    return {
        "enterprise_id": enterprise_id,
        "name": "Ban Nong Bua Community Enterprise",
        "province": province,
        "region": region_of(province),
        "sector": sector,
        "members": 20,
        "target_poor_households": 5,
    }


def _assessed(batch_id: str, product: str, ent: str, province: str, qty: int, on: str, cost: str, nl: str):
    return {
        "batch_id": batch_id,
        "enterprise_id": ent,
        "province": province,
        "sector": "processing",
        "product_id": product,
        "product_name": "Herbal balm",
        "quantity": qty,
        "unit": "jar",
        "produced_on": on,
        "cost_thb": cost,
        "non_local_cost_thb": nl,
        "delivery_ids": [],
        "certifications": [],
        "trainings_completed": 0,
    }


async def _seed(runtime: Runtime, kafka: KafkaAccess, partner: Partner, w: World) -> None:
    """Publish the upstream facts, wait until marketing holds them, and list both products."""
    async with Partner(kafka, source="fivecogs/inputs") as inputs:
        for ent, province, sector in ((w.ent_a, "Nan", "processing"), (w.ent_b, "Chiang Rai", "processing")):
            await inputs.send(
                events_topic("inputs"),
                "th.fivecogs.inputs.enterprise.registered.v1",
                _enterprise(ent, province, sector),
                ent,
            )
    batches = [
        # Published newest first: FIFO follows produced_on, not arrival.
        _assessed(f"{w.balm}-2", w.balm, w.ent_a, "Nan", 10, "2025-02-01", "50.00", "10.00"),
        _assessed(f"{w.balm}-1", w.balm, w.ent_a, "Nan", 3, "2025-01-01", "10.00", "0.05"),
        _assessed(f"{w.tea}-1", w.tea, w.ent_b, "Chiang Rai", 4, "2025-01-09", "20.00", "0.00"),
    ]
    async with Partner(kafka, source="fivecogs/knowledge") as knowledge:
        for batch in batches:
            await knowledge.send(
                events_topic("knowledge"), "th.fivecogs.knowledge.batch.assessed.v1", batch, batch["product_id"]
            )
    await _until(runtime, "SELECT count(*) FROM batches WHERE product_id = ANY($1::text[])", [w.balm, w.tea], 3)
    await _until(
        runtime, "SELECT count(*) FROM enterprises WHERE enterprise_id = ANY($1::text[])", [w.ent_a, w.ent_b], 2
    )
    for product, ent, price in ((w.balm, w.ent_a, "120.00"), (w.tea, w.ent_b, "45.50")):
        listing = {
            "listing_id": f"lst-{product}",
            "product_id": product,
            "enterprise_id": ent,
            "channel": "local_market",
            "unit_price_thb": price,
        }
        await partner.send(INGEST, LISTING_REQUESTED, listing, product)


async def _until(runtime: Runtime, query: str, ids: list[str], count: int, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await runtime.pool.fetchval(query, ids) < count:
        assert asyncio.get_running_loop().time() < deadline, f"marketing did not learn {ids} in {timeout}s"
        await asyncio.sleep(0.1)


@asynccontextmanager
async def _marketing(run_service, stack_env, partner: Partner, w: World) -> AsyncIterator[tuple[Tap, Runtime]]:
    async with Tap(stack_env.kafka, EVENTS, FEEDBACK) as tap, run_service(DEFINITION) as runtime:
        await _seed(runtime, stack_env.kafka, partner, w)
        await tap.wait_for(
            lambda r: _is(r, EVENTS, "listing.accepted") and r.key in {w.balm.encode(), w.tea.encode()}, 2
        )
        yield tap, runtime


def _is(record: Any, topic: str, name: str) -> bool:
    return bool(record.topic == topic and header(record, "ce_type").endswith(f".{name}.v1"))


async def test_accepted_order_takes_fifo_and_a_payment_settles_each_enterprise_once(
    run_service, stack_env, partner: Partner
) -> None:
    w = World()
    order_id = f"ord-{w.tag}"

    def settled(record: Any) -> bool:
        return _is(record, EVENTS, "settlement.recorded") and data(record)["order_id"] == order_id

    async with _marketing(run_service, stack_env, partner, w) as (tap, runtime):
        await partner.send(
            INGEST, ORDER_PLACED, w.order(order_id, (w.balm, 5, "120.00"), (w.tea, 3, "45.50")), order_id
        )
        [accepted] = await tap.wait_for(lambda r: _is(r, EVENTS, "order.accepted") and r.key == order_id.encode())
        [told] = await tap.wait_for(lambda r: _is(r, FEEDBACK, "order.accepted") and data(r)["order_id"] == order_id)

        payment = {"payment_id": f"pay-{w.tag}", "order_id": order_id, "amount_thb": "736.50"}
        payment_event = await partner.send(INGEST, PAYMENT_RECEIVED, payment, order_id)
        await partner.send(INGEST, PAYMENT_RECEIVED, payment, order_id, event_id=payment_event)  # redelivered
        # Same key, so processed after both payments: once it is answered, any second settlement would be out.
        late = await partner.send(INGEST, ORDER_CANCELLED, {"order_id": order_id, "reason": "too late"}, order_id)
        await tap.wait_for(settled, 2)
        [refused] = await tap.wait_for(lambda r: r.topic == FEEDBACK and data(r).get("event_id") == late)
        await asyncio.sleep(1)  # the relay publishes in order; give the tap time to read the events topic too
        settlements = [r for r in tap.records if settled(r)]
        stored = await runtime.pool.fetchval("SELECT count(*) FROM settlements WHERE order_id = $1", order_id)

    balm, tea = data(accepted)["lines"]
    assert data(accepted)["total_thb"] == "736.50"
    assert (balm["enterprise_id"], tea["enterprise_id"]) == (w.ent_a, w.ent_b)
    assert balm["portions"] == [
        {"batch_id": f"{w.balm}-1", "quantity": 3, "cost_thb": "10.00", "non_local_cost_thb": "0.05"},
        {"batch_id": f"{w.balm}-2", "quantity": 2, "cost_thb": "10.00", "non_local_cost_thb": "2.00"},
    ]
    assert tea["portions"] == [
        {"batch_id": f"{w.tea}-1", "quantity": 3, "cost_thb": "15.00", "non_local_cost_thb": "0.00"}
    ]
    assert data(told) == {"order_id": order_id, "buyer_id": f"buyer-{w.tag}", "total_thb": "736.50"}
    assert told.key == PARTNER.encode()

    assert data(refused)["reason"] == "rule:already_settled"
    by_enterprise = {data(r)["enterprise_id"]: data(r) for r in settlements}
    assert len(settlements) == stored == 2
    assert by_enterprise[w.ent_a]["settlement_id"] == f"{order_id}:{w.ent_a}"
    assert _money(by_enterprise[w.ent_a]) == ("600.00", "20.00", "2.05")
    assert _money(by_enterprise[w.ent_b]) == ("136.50", "15.00", "0.00")
    assert by_enterprise[w.ent_b]["province"] == "Chiang Rai"
    assert by_enterprise[w.ent_b]["product_ids"] == [w.tea]
    assert {r.key for r in settlements} == {w.ent_a.encode(), w.ent_b.encode()}


def _money(settlement: dict[str, Any]) -> tuple[str, str, str]:
    return settlement["revenue_thb"], settlement["cost_thb"], settlement["non_local_cost_thb"]


async def test_rejected_order_is_told_three_ways_and_leaves_no_state(run_service, stack_env, partner: Partner) -> None:
    w = World()
    order_id = f"ord-{w.tag}"
    async with _marketing(run_service, stack_env, partner, w) as (tap, _):
        wrong = await partner.send(INGEST, ORDER_PLACED, w.order(order_id, (w.balm, 1, "99.00")), order_id)
        [chain] = await tap.wait_for(lambda r: _is(r, EVENTS, "order.rejected") and r.key == order_id.encode())
        [buyer] = await tap.wait_for(lambda r: _is(r, FEEDBACK, "order.rejected") and data(r)["order_id"] == order_id)
        [event] = await tap.wait_for(
            lambda r: _is(r, FEEDBACK, "partner.event.rejected") and data(r)["event_id"] == wrong
        )
        # The rejection held no stock and no order id: the fixed order goes through, from the oldest batch.
        await partner.send(INGEST, ORDER_PLACED, w.order(order_id, (w.balm, 13, "120.00")), order_id)
        [accepted] = await tap.wait_for(lambda r: _is(r, EVENTS, "order.accepted") and r.key == order_id.encode())
        again = await partner.send(INGEST, ORDER_PLACED, w.order(order_id, (w.tea, 1, "45.50")), order_id)
        [duplicate] = await tap.wait_for(
            lambda r: _is(r, FEEDBACK, "partner.event.rejected") and data(r)["event_id"] == again
        )

    assert data(chain)["reason"] == data(buyer)["reason"] == data(event)["reason"] == "rule:price_mismatch"
    assert data(buyer)["buyer_id"] == f"buyer-{w.tag}"
    assert "120.00" in data(buyer)["detail"]
    assert buyer.key == event.key == PARTNER.encode()
    assert data(event)["event_type"] == ORDER_PLACED
    assert [p["quantity"] for p in data(accepted)["lines"][0]["portions"]] == [3, 10]
    assert data(duplicate)["reason"] == "rule:duplicate_order"
    # Decimal, not float, all the way: the accepted total is the exact sum.
    assert Decimal(data(accepted)["total_thb"]) == Decimal("1560.00")


async def test_cancelling_returns_stock_and_a_retail_listing_waits_for_its_certification(
    run_service, stack_env, partner: Partner
) -> None:
    w = World()
    first, second = f"ord-{w.tag}-1", f"ord-{w.tag}-2"
    retail = {"listing_id": f"lst-r-{w.tag}", "product_id": w.balm, "enterprise_id": w.ent_a, "channel": "retail"}
    async with _marketing(run_service, stack_env, partner, w) as (tap, runtime):
        await partner.send(INGEST, ORDER_PLACED, w.order(first, (w.balm, 4, "120.00")), first)
        await tap.wait_for(lambda r: _is(r, EVENTS, "order.accepted") and r.key == first.encode())
        await partner.send(INGEST, ORDER_CANCELLED, {"order_id": first, "reason": "buyer changed their mind"}, first)
        [cancelled] = await tap.wait_for(lambda r: _is(r, EVENTS, "order.cancelled") and r.key == first.encode())
        await partner.send(INGEST, ORDER_PLACED, w.order(second, (w.balm, 1, "120.00")), second)
        [again] = await tap.wait_for(lambda r: _is(r, EVENTS, "order.accepted") and r.key == second.encode())
        rows = await runtime.pool.fetch("SELECT batch_id, taken FROM batches WHERE product_id = $1", w.balm)
        taken = {row["batch_id"]: row["taken"] for row in rows}

        uncertified = await partner.send(INGEST, LISTING_REQUESTED, retail | {"unit_price_thb": "150.00"}, w.balm)
        [held] = await tap.wait_for(lambda r: r.topic == FEEDBACK and data(r).get("event_id") == uncertified)
        async with Partner(stack_env.kafka, source="fivecogs/knowledge") as knowledge:
            certificate = {
                "certificate_id": f"tcps-{w.tag}",
                "product_id": w.balm,
                "enterprise_id": w.ent_a,
                "province": "Nan",
                "scheme": "tcps",
                "level": None,
                "valid_from": "2020-01-01",
                "valid_until": "2099-12-31",
            }
            await knowledge.send(
                events_topic("knowledge"), "th.fivecogs.knowledge.certification.accepted.v1", certificate, w.balm
            )
        await _until(runtime, "SELECT count(*) FROM certifications WHERE product_id = ANY($1::text[])", [w.balm], 1)
        outcomes = await tap.outcomes([uncertified])  # the certification came: the waiting listing applies
        repriced = await partner.send(INGEST, LISTING_REQUESTED, retail | {"unit_price_thb": "155.00"}, w.balm)
        outcomes |= await tap.outcomes([repriced])
        listed = await tap.wait_for(
            lambda r: _is(r, EVENTS, "listing.accepted") and data(r)["listing_id"] == retail["listing_id"], count=2
        )

    assert data(cancelled) == {"order_id": first, "reason": "buyer changed their mind"}
    assert [p["batch_id"] for p in data(again)["lines"][0]["portions"]] == [f"{w.balm}-1"]
    assert taken == {f"{w.balm}-1": 1, f"{w.balm}-2": 0}
    assert header(held, "ce_type") == "th.fivecogs.partner.event.held.v1"
    assert (data(held)["reason"], data(held)["awaits"]) == ("rule:certification_required", f"certification:{w.balm}")
    assert outcomes == {uncertified: "accepted", repriced: "accepted"}
    assert [(data(r)["channel"], data(r)["unit_price_thb"], data(r)["province"]) for r in listed] == [
        ("retail", "150.00", "Nan"),
        ("retail", "155.00", "Nan"),
    ]


async def test_a_listing_order_and_payment_sent_before_their_product_wait_for_it(
    run_service, stack_env, partner: Partner
) -> None:
    """Partners publish independently: here the trader, the buyer and the bank all send before inputs and
    knowledge have told marketing of the enterprise and its product. Everything waits, then applies in order."""
    w = World()
    jam, order_id = f"jam-{w.tag}", f"ord-{w.tag}"
    listing = {
        "listing_id": f"lst-{jam}",
        "product_id": jam,
        "enterprise_id": w.ent_a,
        "channel": "local_market",
        "unit_price_thb": "30.00",
    }
    payment = {"payment_id": f"pay-{w.tag}", "order_id": order_id, "amount_thb": "60.00"}
    async with (
        Tap(stack_env.kafka, EVENTS, FEEDBACK) as tap,
        run_service(DEFINITION),
        Partner(stack_env.kafka, source="fivecogs/inputs") as inputs,
        Partner(stack_env.kafka, source="fivecogs/knowledge") as knowledge,
    ):
        sent = [
            await partner.send(INGEST, LISTING_REQUESTED, listing, jam),
            await partner.send(INGEST, ORDER_PLACED, w.order(order_id, (jam, 2, "30.00")), order_id),
            await partner.send(INGEST, PAYMENT_RECEIVED, payment, order_id),
        ]
        held = await tap.first_answers(sent)
        enterprise = _enterprise(w.ent_a, "Nan", "processing")
        await inputs.send(events_topic("inputs"), "th.fivecogs.inputs.enterprise.registered.v1", enterprise, w.ent_a)
        batch = _assessed(f"{jam}-1", jam, w.ent_a, "Nan", 5, "2025-01-01", "25.00", "0.00")
        await knowledge.send(events_topic("knowledge"), "th.fivecogs.knowledge.batch.assessed.v1", batch, jam)
        outcomes = await tap.outcomes(sent)
        [settlement] = await tap.wait_for(lambda r: _is(r, EVENTS, "settlement.recorded") and r.key == w.ent_a.encode())

    assert [(data(r)["reason"], data(r)["awaits"]) for r in held] == [
        ("rule:unknown_enterprise", f"enterprise:{w.ent_a}"),
        ("rule:unknown_product", f"stock:{jam}"),
        ("rule:unknown_order", f"order:{order_id}"),
    ]
    assert outcomes == dict.fromkeys(sent, "accepted")
    assert (data(settlement)["order_id"], data(settlement)["revenue_thb"], data(settlement)["cost_thb"]) == (
        order_id,
        "60.00",
        "10.00",
    )


async def test_an_order_sent_before_its_listing_waits_for_it_and_one_never_listed_is_rejected_at_expiry(
    run_service, stack_env, partner: Partner
) -> None:
    w = World()
    early, never = f"ord-{w.tag}-early", f"ord-{w.tag}-never"
    async with (
        Tap(stack_env.kafka, EVENTS, FEEDBACK) as tap,
        run_service(DEFINITION, hold_seconds=3, hold_check_seconds=0.2) as runtime,
    ):
        await _seed(runtime, stack_env.kafka, partner, w)
        on_pracharat = w.order(early, (w.balm, 1, "125.00")) | {"channel": "pracharat_market"}
        on_online = w.order(never, (w.tea, 1, "45.50")) | {"channel": "online"}
        sent = [
            await partner.send(INGEST, ORDER_PLACED, on_pracharat, early),
            await partner.send(INGEST, ORDER_PLACED, on_online, never),
        ]
        await tap.wait_for(lambda r: r.topic == FEEDBACK and data(r).get("event_id") == sent[0])  # held: not listed
        pracharat = {
            "listing_id": f"lst-p-{w.tag}",
            "product_id": w.balm,
            "enterprise_id": w.ent_a,
            "channel": "pracharat_market",
            "unit_price_thb": "125.00",
        }
        listed = await partner.send(INGEST, LISTING_REQUESTED, pracharat, w.balm)
        outcomes = await tap.outcomes([*sent, listed])
        told = await tap.wait_for(
            lambda r: header(r, "ce_type") == "th.fivecogs.order.rejected.v1" and data(r)["order_id"] == never
        )

    assert outcomes == {sent[0]: "accepted", sent[1]: "rule:not_listed", listed: "accepted"}
    assert [header(r, "ce_type").split(".")[-2] for r in tap.answers(sent[1])] == ["held", "rejected"]
    assert data(told[0])["reason"] == "rule:not_listed"  # the buyer hears of the order too, once
    assert len(told) == 1
