"""A product's journey told in sentences: one step per event that touched it. Pure; no I/O.

Steps are written when their event is handled, so the words are those of the event itself. Deliveries name
a batch, not a product (the product is only known once the batch is produced): their steps belong to the
batch and are joined to the product when the journey is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fivecogs_shared.contracts import internal

# The order of steps that happen at the same moment; also every step name there is.
STEPS = ("delivered", "produced", "assessed", "listed", "ordered", "settled", "distributed", "noticed")


@dataclass(frozen=True)
class At:
    """The event a step tells of: its id, its ce_time, and the partner event that started it (`partner_event_id`:
    the event's ce_correlationid, which every cog copies from the partner event's ce_id to what it emits)."""

    event_id: str
    when: datetime
    partner_event_id: str | None = None


@dataclass(frozen=True)
class Step:
    step: str
    what: str
    why: str
    at: At
    product_id: str | None = None
    batch_id: str | None = None
    province: str | None = None  # None: the enterprise's province, once it is known
    enterprise_id: str | None = None


def _thb(amount: Decimal) -> str:
    return f"{amount:.2f} THB"


def delivered(at: At, d: internal.InputDelivered) -> Step:
    why = "an input bought in the locality" if d.local_source else "an input bought outside the locality"
    what = f"{d.quantity} {d.unit} of {d.item} delivered to batch {d.batch_id} for {_thb(d.cost_thb)}"
    return Step("delivered", what, why, at, batch_id=d.batch_id, province=d.province)


def produced(at: At, b: internal.BatchProduced) -> Step:
    what = (
        f"{b.enterprise_id} produced {b.quantity} {b.unit} of {b.product_name} in batch {b.batch_id} "
        f"on {b.produced_on}, at a cost of {_thb(b.cost_thb)}"
    )
    why = "production closes the batch and fixes its cost"
    return Step("produced", what, why, at, product_id=b.product_id, province=b.province)


def assessed(at: At, a: internal.BatchAssessed) -> Step:
    held = ", ".join(_scheme(c.scheme, c.level) for c in a.certifications) or "no certification"
    what = f"Batch {a.batch_id} assessed: {held}, {a.trainings_completed} training(s) completed"
    why = "certifications decide which channels may sell the product"
    return Step("assessed", what, why, at, product_id=a.product_id, province=a.province)


def certified(at: At, c: internal.CertificationAccepted) -> Step:
    what = (
        f"Certificate {c.certificate_id} ({_scheme(c.scheme, c.level)}) accepted, "
        f"valid {c.valid_from} to {c.valid_until}"
    )
    why = "a valid certification opens channels such as online, retail and tourism"
    return Step("assessed", what, why, at, product_id=c.product_id, province=c.province)


def listed(at: At, listing: internal.ListingAccepted) -> Step:
    what = f"Listed on {listing.channel} at {_thb(listing.unit_price_thb)} per unit"
    why = "an accepted listing lets buyers order the product on that channel"
    return Step("listed", what, why, at, product_id=listing.product_id, province=listing.province)


def ordered(at: At, order: internal.OrderAccepted) -> list[Step]:
    why = "a buyer ordered it; the units come from the oldest batches first"
    return [
        Step(
            "ordered",
            f"Order {order.order_id} by {order.buyer_id} on {order.channel}: "
            f"{line.quantity} at {_thb(line.unit_price_thb)} each",
            why,
            at,
            product_id=line.product_id,
            enterprise_id=line.enterprise_id,
        )
        for line in order.lines
    ]


def cancelled(at: At, cancel: internal.OrderCancelled, lines: list[tuple[str, str]]) -> list[Step]:
    """`lines`: (product_id, enterprise_id) of the cancelled order."""
    what = f"Order {cancel.order_id} cancelled: {cancel.reason}"
    why = "a cancelled order returns its units to stock"
    return [
        Step("ordered", what, why, at, product_id=product_id, enterprise_id=enterprise_id)
        for product_id, enterprise_id in lines
    ]


def settled(at: At, s: internal.SettlementRecorded, margin_thb: Decimal) -> list[Step]:
    what = f"Order {s.order_id} paid: revenue {_thb(s.revenue_thb)}, cost {_thb(s.cost_thb)}"
    outcome = "to distribute" if margin_thb > 0 else "so nothing to distribute"
    why = f"a margin of {_thb(margin_thb)} {outcome}"
    return [Step("settled", what, why, at, product_id=p, province=s.province) for p in s.product_ids]


def distributed(at: At, d: internal.DistributionMade) -> list[Step]:
    what = (
        f"Margin of {_thb(d.margin_thb)} returned to the locality: {_thb(d.members_thb)} to members, "
        f"{_thb(d.community_fund_thb)} to the community fund, {_thb(d.reinvest_thb)} reinvested"
    )
    why = f"the {d.province} distribution policy {d.members_share}/{d.community_fund_share}/{d.reinvest_share}"
    return [Step("distributed", what, why, at, product_id=p, province=d.province) for p in d.product_ids]


def noticed(at: At, n: internal.NoticePublished) -> list[Step]:
    what = f"Notice to {n.subscriber_id} ({n.network}): {n.summary}"
    why = f"the subscriber follows {n.topic} news"
    return [Step("noticed", what, why, at, product_id=p, province=n.province) for p in n.product_ids]


def _scheme(scheme: str, level: int | None) -> str:
    return f"{scheme} level {level}" if level is not None else scheme
