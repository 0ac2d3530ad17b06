"""The scenario's own notes on who is who and what exists: enterprises, products, batches, certificates,
listings and stock, as the scenario plans them. The model never reads these; it works from the records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from fivecogs_shared.contracts.partner import Channel, Scheme, Sector

CHANNELS: tuple[Channel, ...] = ("local_market", "pracharat_market", "otop_trader", "online", "retail", "tourism")


@dataclass
class PlannedBatch:
    batch_id: str
    quantity: int
    produced_on: date
    deliveries: list[tuple[Decimal, bool]] = field(default_factory=list)  # (cost, local_source)
    left: int = 0

    def __post_init__(self) -> None:
        self.left = self.quantity


@dataclass(frozen=True)
class PlannedCertificate:
    certificate_id: str
    scheme: Scheme
    level: int | None
    valid_from: date
    valid_until: date


@dataclass
class PlannedProduct:
    product_id: str
    name: str
    unit: str
    enterprise: PlannedEnterprise
    pricing: str = "markup"  # markup | loss | break_even
    unit_cost_plan: Decimal = Decimal("0.00")  # what a unit roughly costs to make; drawn per product
    listed_at: datetime | None = None  # when the product's listings are requested
    batches: list[PlannedBatch] = field(default_factory=list)
    certificates: list[PlannedCertificate] = field(default_factory=list)
    prices: dict[Channel, Decimal] = field(default_factory=dict)  # the latest accepted listing per channel
    old_prices: dict[Channel, Decimal] = field(default_factory=dict)  # replaced prices

    def fifo(self) -> list[PlannedBatch]:
        return sorted(self.batches, key=lambda b: (b.produced_on, b.batch_id))

    @property
    def stock(self) -> int:
        return sum(b.left for b in self.batches)

    def take(self, quantity: int) -> list[tuple[PlannedBatch, int]]:
        taken: list[tuple[PlannedBatch, int]] = []
        for batch in self.fifo():
            units = min(quantity, batch.left)
            if units:
                batch.left -= units
                quantity -= units
                taken.append((batch, units))
        return taken

    def unit_cost(self) -> Decimal:
        cost = sum((c for b in self.batches for c, _ in b.deliveries), Decimal(0))
        return cost / sum(b.quantity for b in self.batches)

    def cheapest_unit_cost(self) -> Decimal:
        return min(sum((c for c, _ in b.deliveries), Decimal(0)) / b.quantity for b in self.batches)

    def may_list(self, channel: Channel, moment: datetime) -> bool:
        day = moment.astimezone(UTC).date()
        held = [c for c in self.certificates if c.valid_from <= day <= c.valid_until]
        if channel in ("otop_trader", "online"):
            return bool(held)
        if channel == "retail":
            return any(c.scheme == "tcps" or (c.scheme == "otop_stars" and (c.level or 0) >= 4) for c in held)
        if channel == "tourism":
            return self.enterprise.sector == "community_tourism" and any(c.scheme == "cbt_standard" for c in held)
        return True


@dataclass
class PlannedEnterprise:
    enterprise_id: str
    name: str
    province: str
    sector: Sector
    members: int
    households: int
    products: list[PlannedProduct] = field(default_factory=list)


@dataclass
class PlannedOrder:
    order_id: str
    source: str
    buyer_id: str
    channel: Channel
    lines: list[tuple[PlannedProduct, int, Decimal]]  # (product, quantity, unit price)
    taken: list[tuple[PlannedBatch, int]] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((price * quantity for _, quantity, price in self.lines), Decimal("0.00"))

    def give_back(self) -> None:
        for batch, units in self.taken:
            batch.left += units


@dataclass
class Cast:
    """Everything the scenario created so far."""

    enterprises: list[PlannedEnterprise] = field(default_factory=list)
    ghost_enterprise: str = ""  # an id whose registration is refused, so it stays unknown
    must_try: dict[str, Channel] = field(default_factory=dict)  # product -> a channel its listing is tried on
    accepted_orders: list[PlannedOrder] = field(default_factory=list)
    cancelled_orders: list[PlannedOrder] = field(default_factory=list)
    late_orders: list[PlannedOrder] = field(default_factory=list)
    # Products no accepted order may take from: a refused order waits on one of them until its wait expires, and
    # is judged then; its stock must read the same whenever that is.
    reserved: set[str] = field(default_factory=set)

    @property
    def products(self) -> list[PlannedProduct]:
        return [p for e in self.enterprises for p in e.products]

    def of_sector(self, sector: Sector) -> list[PlannedEnterprise]:
        return [e for e in self.enterprises if e.sector == sector]
