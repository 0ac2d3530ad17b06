"""Each cog's backlog: realistic, valid events in the order a careful partner (and the upstream cogs) would send
them, with what they must cause: the events the service emits, the rows its schema ends with. `prelude` is what
must be applied before the timed backlog (the subscribers a notice goes to, the stock an order takes from)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fivecogs_ops.bench.records import Record, Writer
from fivecogs_shared.contracts import internal, internal_type
from fivecogs_shared.provinces import TARGET_PROVINCES, region_of

DELIVERIES_PER_BATCH = 4
BATCHES_PER_PRODUCT = 8  # knowledge: assessments per certified product
PRODUCTS_PER_ENTERPRISE = 5
LINES_PER_ORDER = 3
SUBSCRIBERS = 8  # communication: every notice subject reaches each of them
WEBHOOK_SUBSCRIBERS = 2  # of them, those who want their notices by webhook too
PRODUCED_ON = date(2026, 1, 5)
PRICE = Decimal("120.00")


@dataclass
class Workload:
    cog: str
    backlog: list[Record]
    events: Counter[str]  # ce_type -> how many the service publishes on its events topic
    rows: dict[str, int]  # table -> rows its schema holds at the end
    prelude: list[Record] = field(default_factory=list)
    webhooks: int = 0  # notices communication must deliver by webhook (after the drain, untimed)

    @property
    def records(self) -> int:
        return len(self.backlog)

    @property
    def consumed(self) -> int:
        """Every record the service takes in (and so the inbox's accepted rows)."""
        return len(self.prelude) + len(self.backlog)


@dataclass(frozen=True)
class Enterprise:
    enterprise_id: str
    province: str

    def fact(self) -> internal.EnterpriseRegistered:
        return internal.EnterpriseRegistered(
            enterprise_id=self.enterprise_id,
            name=f"Enterprise {self.enterprise_id}",
            province=self.province,
            region=region_of(self.province),
            sector="agriculture",
            members=30,
            target_poor_households=5,
        )

    def registration(self) -> dict[str, object]:
        return self.fact().model_dump(mode="json", exclude={"region"})


def enterprises(writer: Writer, count: int) -> list[Enterprise]:
    provinces = sorted(TARGET_PROVINCES)
    return [Enterprise(writer.next_id("e"), provinces[i % len(provinces)]) for i in range(max(1, count))]


def _one_in_a_hundred(records: int) -> int:
    return max(1, records // 100)


# --- inputs -----------------------------------------------------------------------------------------------


def inputs(writer: Writer, records: int) -> Workload:
    """1 % registrations, then batches of DELIVERIES_PER_BATCH deliveries each followed by the batch itself."""
    firms = enterprises(writer, _one_in_a_hundred(records))
    backlog = [writer.partner_event("th.fivecogs.enterprise.registered.v1", e.registration()) for e in firms]
    batches = deliveries = 0
    while len(backlog) < records:
        firm = firms[batches % len(firms)]
        batch_id, room = writer.next_id("b"), records - len(backlog)
        ids = [writer.next_id("d") for _ in range(min(DELIVERIES_PER_BATCH, room))]
        backlog += [
            writer.partner_event("th.fivecogs.input.delivered.v1", delivery_data(d, batch_id, firm)) for d in ids
        ]
        deliveries += len(ids)
        batches += 1
        if len(backlog) < records:
            backlog.append(writer.partner_event("th.fivecogs.batch.produced.v2", production_data(batch_id, firm, ids)))
    produced = records - len(firms) - deliveries
    events = Counter(
        {
            internal_type("inputs", "enterprise.registered"): len(firms),
            internal_type("inputs", "input.delivered"): deliveries,
            internal_type("inputs", "batch.produced"): produced,
        }
    )
    return Workload(
        "inputs", backlog, +events, {"enterprises": len(firms), "batches": batches, "deliveries": deliveries}
    )


def delivery_data(delivery_id: str, batch_id: str, firm: Enterprise) -> dict[str, object]:
    return {
        "delivery_id": delivery_id,
        "batch_id": batch_id,
        "enterprise_id": firm.enterprise_id,
        "item": "rice seed",
        "quantity": "12.5",
        "unit": "kg",
        "cost_thb": "250.00",
        "local_source": len(delivery_id) % 2 == 0,
    }


def production_data(batch_id: str, firm: Enterprise, delivery_ids: list[str]) -> dict[str, object]:
    return {
        "batch_id": batch_id,
        "enterprise_id": firm.enterprise_id,
        "product_id": f"{firm.enterprise_id}-rice",
        "product_name": "Hom mali rice",
        "quantity": 100,
        "unit": "bag",
        "produced_on": PRODUCED_ON.isoformat(),
        "lot": batch_id,
        "expires_on": (PRODUCED_ON + timedelta(days=365)).isoformat(),
        "delivery_ids": delivery_ids,
    }


# --- knowledge ----------------------------------------------------------------------------------------------


def knowledge(writer: Writer, records: int) -> Workload:
    """Inputs' facts (registrations, produced batches) and the partner's certifications: each product's first
    batch, its certification, then BATCHES_PER_PRODUCT - 1 more batches, assessed with the certification."""
    firms = enterprises(writer, _one_in_a_hundred(records))
    backlog = [writer.fact("inputs", "enterprise.registered", e.fact()) for e in firms]
    batches = certificates = products = 0
    while len(backlog) < records:
        firm = firms[products % len(firms)]
        product_id = f"{firm.enterprise_id}-p{products}"
        products += 1
        for number in range(BATCHES_PER_PRODUCT):
            if len(backlog) >= records:
                break
            backlog.append(writer.fact("inputs", "batch.produced", _batch(writer, firm, product_id)))
            batches += 1
            if number == 0 and len(backlog) < records:
                backlog.append(
                    writer.partner_event(
                        "th.fivecogs.certification.granted.v1", certificate_data(writer, firm, product_id)
                    )
                )
                certificates += 1
    events = Counter(
        {
            internal_type("knowledge", "batch.assessed"): batches,
            internal_type("knowledge", "certification.accepted"): certificates,
        }
    )
    rows = {"enterprises": len(firms), "batches": batches, "certifications": certificates}
    return Workload("knowledge", backlog, +events, rows)


def _batch(writer: Writer, firm: Enterprise, product_id: str, quantity: int = 100) -> internal.BatchProduced:
    batch_id = writer.next_id("b")
    return internal.BatchProduced(
        batch_id=batch_id,
        enterprise_id=firm.enterprise_id,
        province=firm.province,
        sector="agriculture",
        product_id=product_id,
        product_name="Hom mali rice",
        quantity=quantity,
        unit="bag",
        produced_on=PRODUCED_ON,
        cost_thb=Decimal("1000.00"),
        non_local_cost_thb=Decimal("250.00"),
        delivery_ids=[f"{batch_id}-d1", f"{batch_id}-d2"],
    )


def certificate_data(writer: Writer, firm: Enterprise, product_id: str) -> dict[str, object]:
    return {
        "certificate_id": writer.next_id("c"),
        "product_id": product_id,
        "enterprise_id": firm.enterprise_id,
        "scheme": "gap",
        "level": None,
        "valid_from": (PRODUCED_ON - timedelta(days=30)).isoformat(),
        "valid_until": (PRODUCED_ON + timedelta(days=700)).isoformat(),
    }


# --- marketing ----------------------------------------------------------------------------------------------


def marketing(writer: Writer, records: int) -> Workload:
    """Prelude: inputs' registrations and knowledge's assessed batches (the stock). Backlog: a listing per
    product, then orders of LINES_PER_ORDER lines of one enterprise's products, each followed by its payment."""
    products_wanted = max(LINES_PER_ORDER, records // 20)
    firms = enterprises(writer, max(1, products_wanted // PRODUCTS_PER_ENTERPRISE))
    catalogue = {e.enterprise_id: [f"{e.enterprise_id}-p{k}" for k in range(PRODUCTS_PER_ENTERPRISE)] for e in firms}
    prelude = [writer.fact("inputs", "enterprise.registered", e.fact()) for e in firms]
    stock = max(100, records)  # never runs out: every order is accepted
    for firm in firms:
        for product_id in catalogue[firm.enterprise_id]:
            assessed = internal.BatchAssessed(
                **_batch(writer, firm, product_id, stock).model_dump(), certifications=[], trainings_completed=0
            )
            prelude.append(writer.fact("knowledge", "batch.assessed", assessed))
    backlog = [
        writer.partner_event("th.fivecogs.listing.requested.v1", listing_data(writer, firm, product_id))
        for firm in firms
        for product_id in catalogue[firm.enterprise_id]
    ]
    listings, orders = len(backlog), 0
    while len(backlog) + 2 <= records:
        firm = firms[orders % len(firms)]
        order_id = writer.next_id("o")
        backlog.append(
            writer.partner_event("th.fivecogs.order.placed.v1", order_data(order_id, catalogue[firm.enterprise_id]))
        )
        payment = {
            "payment_id": writer.next_id("pay"),
            "order_id": order_id,
            "amount_thb": str(PRICE * LINES_PER_ORDER),
        }
        backlog.append(writer.partner_event("th.fivecogs.payment.received.v1", payment))
        orders += 1
    paid = orders
    if len(backlog) < records:  # one record short of a pair: an order not paid yet
        firm = firms[orders % len(firms)]
        backlog.append(
            writer.partner_event(
                "th.fivecogs.order.placed.v1", order_data(writer.next_id("o"), catalogue[firm.enterprise_id])
            )
        )
        orders += 1
    events = Counter(
        {
            internal_type("marketing", "listing.accepted"): listings,
            internal_type("marketing", "order.accepted"): orders,
            internal_type("marketing", "settlement.recorded"): paid,  # one enterprise per order
        }
    )
    rows = {"listings": listings, "orders": orders, "order_lines": orders * LINES_PER_ORDER, "settlements": paid}
    return Workload("marketing", backlog, +events, rows, prelude=prelude)


def listing_data(writer: Writer, firm: Enterprise, product_id: str) -> dict[str, object]:
    return {
        "listing_id": writer.next_id("l"),
        "product_id": product_id,
        "enterprise_id": firm.enterprise_id,
        "channel": "local_market",
        "unit_price_thb": str(PRICE),
    }


def order_data(order_id: str, products: list[str]) -> dict[str, object]:
    return {
        "order_id": order_id,
        "buyer_id": f"{order_id}-buyer",
        "channel": "local_market",
        "lines": [{"product_id": p, "quantity": 1, "unit_price_thb": str(PRICE)} for p in products[:LINES_PER_ORDER]],
        "placed_at": datetime.now(UTC).isoformat(),
    }


# --- communication ------------------------------------------------------------------------------------------


def communication(writer: Writer, records: int, webhook_url: str | None = None) -> Workload:
    """Prelude: SUBSCRIBERS subscriptions to listings and sales in every province, WEBHOOK_SUBSCRIBERS of them
    with a webhook (when a receiver's URL is given). Backlog: marketing's accepted listings, each a notice to
    every subscriber."""
    prelude = []
    for number in range(SUBSCRIBERS):
        subscription: dict[str, object] = {
            "subscriber_id": writer.next_id("s"),
            "network": "civil_society",
            "topics": ["listing", "sale"],
        }
        if webhook_url and number < WEBHOOK_SUBSCRIBERS:
            subscription["webhook_url"] = webhook_url
        prelude.append(writer.partner_event("th.fivecogs.subscription.created.v1", subscription))
    firms = enterprises(writer, _one_in_a_hundred(records))
    backlog = []
    for number in range(records):
        firm = firms[number % len(firms)]
        listing = internal.ListingAccepted(
            listing_id=writer.next_id("l"),
            product_id=f"{firm.enterprise_id}-p{number}",
            enterprise_id=firm.enterprise_id,
            province=firm.province,
            channel="local_market",
            unit_price_thb=PRICE,
            listed_at=datetime.now(UTC),
        )
        backlog.append(writer.fact("marketing", "listing.accepted", listing))
    notices = records * SUBSCRIBERS
    events = Counter({internal_type("communication", "notice.published"): notices})
    rows = {"subscribers": SUBSCRIBERS, "notices": notices}
    webhooks = records * WEBHOOK_SUBSCRIBERS if webhook_url else 0
    return Workload("communication", backlog, events, rows, prelude=prelude, webhooks=webhooks)


# --- management ---------------------------------------------------------------------------------------------


def management(writer: Writer, records: int) -> Workload:
    """Inputs' registrations (1 %) and marketing's settlements, each distributed (a positive margin)."""
    firms = enterprises(writer, _one_in_a_hundred(records))
    backlog = [writer.fact("inputs", "enterprise.registered", e.fact()) for e in firms]
    settlements = records - len(backlog)
    for number in range(settlements):
        firm = firms[number % len(firms)]
        order_id = writer.next_id("o")
        settled = internal.SettlementRecorded(
            settlement_id=f"{order_id}:{firm.enterprise_id}",
            order_id=order_id,
            payment_id=f"{order_id}-pay",
            enterprise_id=firm.enterprise_id,
            province=firm.province,
            revenue_thb=Decimal("360.00"),
            cost_thb=Decimal("210.00"),
            non_local_cost_thb=Decimal("50.00"),
            product_ids=[f"{firm.enterprise_id}-p0"],
            settled_at=datetime.now(UTC),
        )
        backlog.append(writer.fact("marketing", "settlement.recorded", settled))
    events = Counter({internal_type("management", "distribution.made"): settlements})
    rows = {"enterprises": len(firms), "settlements": settlements, "distributions": settlements}
    return Workload("management", backlog, +events, rows)


BUILDERS: dict[str, Callable[[Writer, int], Workload]] = {
    "inputs": inputs,
    "knowledge": knowledge,
    "marketing": marketing,
    "communication": communication,
    "management": management,
}
