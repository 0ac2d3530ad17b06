"""Inputs: community enterprises, the production inputs delivered to their batches, and the batches they
produce. Pure rules and state transitions; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from fivecogs_shared.contracts import partner
from fivecogs_shared.errors import Awaiting, RuleViolation


@dataclass(frozen=True)
class Enterprise:
    enterprise_id: str
    name: str
    province: str
    sector: str
    members: int
    target_poor_households: int


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    item: str
    quantity: Decimal
    unit: str
    cost_thb: Decimal
    local_source: bool


@dataclass(frozen=True)
class Production:
    product_id: str
    product_name: str
    quantity: int
    unit: str
    produced_on: date
    lot: str | None = None
    expires_on: date | None = None


@dataclass(frozen=True)
class Batch:
    batch_id: str
    enterprise_id: str
    deliveries: tuple[Delivery, ...] = ()
    production: Production | None = None

    @property
    def closed(self) -> bool:
        return self.production is not None

    @property
    def cost_thb(self) -> Decimal:
        return sum((d.cost_thb for d in self.deliveries), Decimal("0.00"))

    @property
    def non_local_cost_thb(self) -> Decimal:
        """The part of the cost paid outside the enterprise's province: money that left the locality."""
        return sum((d.cost_thb for d in self.deliveries if not d.local_source), Decimal("0.00"))


@dataclass
class ProductCatalogue:
    """Which enterprise makes each product: a product belongs to one enterprise."""

    owners: dict[str, str] = field(default_factory=dict)


def enterprise_ref(enterprise_id: str) -> str:
    return f"enterprise:{enterprise_id}"


def delivery_ref(batch_id: str, delivery_id: str) -> str:
    return f"delivery:{batch_id}:{delivery_id}"


def register(existing: Enterprise | None, command: partner.EnterpriseRegistered) -> Enterprise:
    """A first registration creates the enterprise; a later one updates its members and households (TPMAP
    figures change), and may rename it, but the province and sector define the enterprise and cannot move."""
    if existing is None:
        return Enterprise(
            command.enterprise_id,
            command.name,
            command.province,
            command.sector,
            command.members,
            command.target_poor_households,
        )
    for attribute in ("province", "sector"):
        if getattr(existing, attribute) != getattr(command, attribute):
            raise RuleViolation(
                "enterprise_changed",
                f"{command.enterprise_id} is registered with {attribute} {getattr(existing, attribute)!r}; "
                f"it cannot become {getattr(command, attribute)!r}",
            )
    return replace(
        existing,
        name=command.name,
        members=command.members,
        target_poor_households=command.target_poor_households,
    )


def deliver(enterprise: Enterprise | None, batch: Batch | None, command: partner.InputDelivered) -> Batch:
    """Record an input delivered to a batch that is still open (opening the batch on its first delivery)."""
    _require_enterprise(enterprise, command.enterprise_id)
    batch = batch or Batch(command.batch_id, command.enterprise_id)
    _require_same_enterprise(batch, command.enterprise_id)
    if batch.closed:
        raise RuleViolation("batch_closed", f"batch {batch.batch_id} was produced already; it takes no more inputs")
    if any(d.delivery_id == command.delivery_id for d in batch.deliveries):
        raise RuleViolation("duplicate_delivery", f"delivery {command.delivery_id} is already on the batch")
    delivery = Delivery(
        command.delivery_id,
        command.item,
        command.quantity,
        command.unit,
        command.cost_thb,
        command.local_source,
    )
    return replace(batch, deliveries=(*batch.deliveries, delivery))


def produce(
    enterprise: Enterprise | None,
    batch: Batch | None,
    product_owner: str | None,
    command: partner.BatchProducedV2,
) -> Batch:
    """Close the batch. A batch that names its deliveries waits for each and costs exactly those, whatever
    order they arrive in; one that does not costs the deliveries received before it."""
    _require_enterprise(enterprise, command.enterprise_id)
    batch = batch or Batch(command.batch_id, command.enterprise_id)
    _require_same_enterprise(batch, command.enterprise_id)
    if batch.closed:
        raise RuleViolation("batch_closed", f"batch {batch.batch_id} was produced already")
    if command.delivery_ids is not None:
        _require_deliveries(batch, command.delivery_ids)
        # In the order named, not received: the batch's facts must not depend on arrival.
        place = {delivery_id: n for n, delivery_id in enumerate(command.delivery_ids)}
        batch = replace(batch, deliveries=tuple(sorted(batch.deliveries, key=lambda d: place[d.delivery_id])))
    if product_owner is not None and product_owner != command.enterprise_id:
        raise RuleViolation(
            "product_enterprise_mismatch",
            f"product {command.product_id} is made by {product_owner}, not {command.enterprise_id}",
        )
    production = Production(
        command.product_id,
        command.product_name,
        command.quantity,
        command.unit,
        command.produced_on,
        command.lot,
        command.expires_on,
    )
    return replace(batch, production=production)


def _require_enterprise(enterprise: Enterprise | None, enterprise_id: str) -> None:
    if enterprise is None:
        raise Awaiting(
            "unknown_enterprise", f"enterprise {enterprise_id} is not registered", enterprise_ref(enterprise_id)
        )


def _require_deliveries(batch: Batch, named: list[str]) -> None:
    received = {d.delivery_id for d in batch.deliveries}
    unnamed = sorted(received - set(named))
    if unnamed:
        raise RuleViolation(
            "delivery_not_named", f"batch {batch.batch_id} received deliveries it does not name: {', '.join(unnamed)}"
        )
    for delivery_id in named:
        if delivery_id not in received:
            raise Awaiting(
                "missing_delivery",
                f"batch {batch.batch_id} names delivery {delivery_id}, which has not been received",
                delivery_ref(batch.batch_id, delivery_id),
            )


def _require_same_enterprise(batch: Batch, enterprise_id: str) -> None:
    if batch.enterprise_id != enterprise_id:
        raise RuleViolation(
            "batch_enterprise_mismatch",
            f"batch {batch.batch_id} belongs to {batch.enterprise_id}, not {enterprise_id}",
        )
