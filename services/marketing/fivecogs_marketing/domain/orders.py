"""Orders: accepted or rejected whole, stock taken FIFO; an open order is cancelled (its stock returns) or
paid (settled per enterprise)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Literal

from fivecogs_marketing.domain.listing import Listing, listing_ref
from fivecogs_marketing.domain.stock import Batch, Portion, available, take_fifo
from fivecogs_shared.contracts import partner
from fivecogs_shared.errors import Awaiting, RuleViolation

Status = Literal["open", "cancelled", "paid"]


@dataclass(frozen=True)
class OrderLine:
    product_id: str
    enterprise_id: str
    province: str
    quantity: int
    unit_price_thb: Decimal
    portions: tuple[Portion, ...]

    @property
    def revenue_thb(self) -> Decimal:
        return self.unit_price_thb * self.quantity

    @property
    def cost_thb(self) -> Decimal:
        return _sum(p.cost_thb for p in self.portions)

    @property
    def non_local_cost_thb(self) -> Decimal:
        return _sum(p.non_local_cost_thb for p in self.portions)


@dataclass(frozen=True)
class Order:
    order_id: str
    buyer_id: str
    channel: partner.Channel
    placed_at: datetime
    lines: tuple[OrderLine, ...]
    status: Status = "open"
    payment_id: str | None = None

    @property
    def total_thb(self) -> Decimal:
        return _sum(line.revenue_thb for line in self.lines)

    @property
    def portions(self) -> list[Portion]:
        return [p for line in self.lines for p in line.portions]


@dataclass(frozen=True)
class Settlement:
    """One enterprise's part of a paid order."""

    settlement_id: str
    order_id: str
    payment_id: str
    enterprise_id: str
    province: str
    revenue_thb: Decimal
    cost_thb: Decimal
    non_local_cost_thb: Decimal
    product_ids: tuple[str, ...]
    settled_at: datetime


def stock_ref(product_id: str) -> str:
    """A product with at least one assessed batch: what an order of it waits for."""
    return f"stock:{product_id}"


def order_ref(order_id: str) -> str:
    return f"order:{order_id}"


def place_order(
    already_accepted: bool,
    command: partner.OrderPlaced,
    listings: Mapping[str, Listing],
    stock: Mapping[str, Sequence[Batch]],
) -> tuple[Order, list[Batch]]:
    """`listings`: the order channel's listings by product; `stock`: every assessed batch by product.
    Returns the accepted order and the batches it took from."""
    if already_accepted:
        raise RuleViolation("duplicate_order", f"order {command.order_id} was accepted already")
    lines: list[OrderLine] = []
    touched: list[Batch] = []
    for requested in command.lines:
        line, after = _take_line(requested, command.channel, listings.get(requested.product_id), stock)
        lines.append(line)
        touched += after
    order = Order(command.order_id, command.buyer_id, command.channel, command.placed_at, tuple(lines))
    return order, touched


def _take_line(
    requested: partner.OrderLine, channel: str, listing: Listing | None, stock: Mapping[str, Sequence[Batch]]
) -> tuple[OrderLine, list[Batch]]:
    product = requested.product_id
    batches = stock.get(product, ())
    if not batches:
        raise Awaiting("unknown_product", f"product {product} has never been assessed", stock_ref(product))
    if listing is None:
        raise Awaiting("not_listed", f"product {product} is not listed on {channel}", listing_ref(channel, product))
    if requested.unit_price_thb != listing.unit_price_thb:
        raise RuleViolation(
            "price_mismatch",
            f"product {product} is listed on {channel} at {listing.unit_price_thb}, not {requested.unit_price_thb}",
        )
    if available(batches) < requested.quantity:
        raise RuleViolation(
            "insufficient_stock",
            f"{available(batches)} units of {product} are available, {requested.quantity} were ordered",
        )
    portions, after = take_fifo(batches, requested.quantity)
    line = OrderLine(
        product,
        listing.enterprise_id,
        listing.province,
        requested.quantity,
        requested.unit_price_thb,
        tuple(portions),
    )
    taken_from = {p.batch_id for p in portions}
    return line, [b for b in after if b.batch_id in taken_from]


def cancel(order: Order | None, command: partner.OrderCancelled) -> Order:
    """The caller returns the order's portions to their batches."""
    order = _known(order, command.order_id)
    if order.status == "paid":
        raise RuleViolation("already_settled", f"order {order.order_id} is paid; it cannot be cancelled")
    if order.status == "cancelled":
        raise RuleViolation("order_not_open", f"order {order.order_id} is cancelled already")
    return replace(order, status="cancelled")


def pay(order: Order | None, command: partner.PaymentReceived, paid_at: datetime) -> tuple[Order, list[Settlement]]:
    order = _known(order, command.order_id)
    if order.status == "cancelled":
        raise RuleViolation("order_not_open", f"order {order.order_id} is cancelled")
    if order.status == "paid":
        raise RuleViolation("already_settled", f"order {order.order_id} is paid already")
    if command.amount_thb != order.total_thb:
        raise RuleViolation(
            "amount_mismatch", f"order {order.order_id} totals {order.total_thb}, the payment is {command.amount_thb}"
        )
    paid = replace(order, status="paid", payment_id=command.payment_id)
    return paid, settle(paid, command.payment_id, paid_at)


def settle(order: Order, payment_id: str, settled_at: datetime) -> list[Settlement]:
    """One settlement per enterprise, in the order its first line appears."""
    by_enterprise: dict[str, list[OrderLine]] = {}
    for line in order.lines:
        by_enterprise.setdefault(line.enterprise_id, []).append(line)
    return [
        Settlement(
            settlement_id=f"{order.order_id}:{enterprise_id}",
            order_id=order.order_id,
            payment_id=payment_id,
            enterprise_id=enterprise_id,
            province=lines[0].province,
            revenue_thb=_sum(line.revenue_thb for line in lines),
            cost_thb=_sum(line.cost_thb for line in lines),
            non_local_cost_thb=_sum(line.non_local_cost_thb for line in lines),
            product_ids=tuple(line.product_id for line in lines),
            settled_at=settled_at,
        )
        for enterprise_id, lines in by_enterprise.items()
    ]


def _known(order: Order | None, order_id: str) -> Order:
    # A rejected order leaves no state, so it is as unknown as one never placed.
    if order is None:
        raise Awaiting("unknown_order", f"order {order_id} was never accepted", order_ref(order_id))
    return order


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, Decimal("0.00"))
