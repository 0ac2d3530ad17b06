"""Orders: accepted or rejected whole with the rules in order, stock taken FIFO, cancellation returns it,
payment settles per enterprise."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from fivecogs_marketing.domain.listing import Listing
from fivecogs_marketing.domain.orders import Order, Settlement, cancel, pay, place_order
from fivecogs_marketing.domain.stock import Batch, Portion, give_back
from fivecogs_shared.contracts import partner
from fivecogs_shared.errors import Awaiting, RuleViolation

PLACED = datetime(2025, 3, 5, 3, 15, tzinfo=UTC)
PAID = datetime(2025, 3, 6, 9, 0, tzinfo=UTC)


def _listing(product: str, price: str, enterprise: str = "ent-a", province: str = "Nan") -> Listing:
    return Listing(f"lst-{product}", product, enterprise, province, "online", Decimal(price), PLACED)


LISTINGS = {"balm": _listing("balm", "120.00"), "tea": _listing("tea", "45.50", "ent-b", "Chiang Rai")}


def _stock() -> dict[str, list[Batch]]:
    return {
        "balm": [
            Batch("balm-2", "balm", "ent-a", "Nan", 10, date(2025, 2, 1), Decimal("50.00"), Decimal("10.00")),
            Batch("balm-1", "balm", "ent-a", "Nan", 3, date(2025, 1, 1), Decimal("10.00"), Decimal("0.05")),
        ],
        "tea": [Batch("tea-1", "tea", "ent-b", "Chiang Rai", 4, date(2025, 1, 9), Decimal("20.00"), Decimal("0"))],
    }


def _order(*lines: tuple[str, int, str], order_id: str = "ord-1") -> partner.OrderPlaced:
    return partner.OrderPlaced(
        order_id=order_id,
        buyer_id="buyer-7",
        channel="online",
        lines=[partner.OrderLine(product_id=p, quantity=q, unit_price_thb=Decimal(price)) for p, q, price in lines],
        placed_at=PLACED,
    )


def _refusal(command: partner.OrderPlaced, stock: dict[str, list[Batch]] | None = None, accepted: bool = False) -> str:
    with pytest.raises(RuleViolation) as refused:
        place_order(accepted, command, LISTINGS, _stock() if stock is None else stock)
    return refused.value.rule


def _accepted(*lines: tuple[str, int, str]) -> Order:
    order, _ = place_order(False, _order(*lines), LISTINGS, _stock())
    return order


# --- placing ----------------------------------------------------------------------------------------------


def test_accepted_order_takes_fifo_and_totals_the_lines() -> None:
    order, taken = place_order(False, _order(("balm", 5, "120.00"), ("tea", 1, "45.50")), LISTINGS, _stock())

    balm, tea = order.lines
    assert order.total_thb == Decimal("645.50")
    assert order.status == "open"
    assert (balm.enterprise_id, balm.province, tea.enterprise_id) == ("ent-a", "Nan", "ent-b")
    # 3 units of the older batch (10.00 / 3 each, but all 3 are its whole cost), 2 of the newer (50.00 / 10 each).
    assert balm.portions == (
        Portion("balm-1", 3, Decimal("10.00"), Decimal("0.05")),
        Portion("balm-2", 2, Decimal("10.00"), Decimal("2.00")),
    )
    assert tea.portions == (Portion("tea-1", 1, Decimal("5.00"), Decimal("0.00")),)
    assert {b.batch_id: b.taken for b in taken} == {"balm-1": 3, "balm-2": 2, "tea-1": 1}


def test_portion_costs_round_half_up() -> None:
    order = _accepted(("balm", 1, "120.00"))

    # 0.05 / 3 = 0.01666.. -> 0.02; 10.00 / 3 = 3.333.. -> 3.33
    assert order.lines[0].portions == (Portion("balm-1", 1, Decimal("3.33"), Decimal("0.02")),)


def test_duplicate_order_is_checked_before_the_lines() -> None:
    assert _refusal(_order(("nothing", 1, "1.00")), accepted=True) == "duplicate_order"


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        (("unheard-of", 1, "1.00"), "unknown_product"),
        (("balm", 1, "119.99"), "price_mismatch"),
        (("balm", 14, "120.00"), "insufficient_stock"),
    ],
)
def test_each_line_rule(line: tuple[str, int, str], rule: str) -> None:
    assert _refusal(_order(line)) == rule


@pytest.mark.parametrize(
    ("line", "awaits"),
    [
        (("unheard-of", 1, "1.00"), "stock:unheard-of"),  # its batch may still be on its way through knowledge
        (("balm", 1, "119.99"), None),  # the price in force when the order is received decides
        (("balm", 14, "120.00"), None),  # stock is first come, first served
    ],
)
def test_what_an_order_waits_for_and_what_it_does_not(line: tuple[str, int, str], awaits: str | None) -> None:
    with pytest.raises(RuleViolation) as refused:
        place_order(False, _order(line), LISTINGS, _stock())
    assert (refused.value.awaits if isinstance(refused.value, Awaiting) else None) == awaits


def test_a_product_with_stock_but_no_listing_on_the_channel_is_not_listed() -> None:
    stock = _stock() | {"soap": [replace(_stock()["balm"][0], batch_id="soap-1", product_id="soap")]}

    assert _refusal(_order(("soap", 1, "10.00")), stock) == "not_listed"
    with pytest.raises(Awaiting) as waiting:  # until the listing comes, or the wait is over
        place_order(False, _order(("soap", 1, "10.00")), LISTINGS, stock)
    assert waiting.value.awaits == "listing:online:soap"


def test_an_assessed_product_without_stock_left_is_not_unknown() -> None:
    sold_out = {"balm": [replace(b, taken=b.quantity) for b in _stock()["balm"]]}

    assert _refusal(_order(("balm", 1, "120.00")), sold_out) == "insufficient_stock"


def test_unknown_product_is_checked_before_the_listing() -> None:
    # Listed, but no batch was ever assessed: the product is unknown, not merely out of stock.
    assert _refusal(_order(("tea", 1, "45.50")), {"balm": _stock()["balm"]}) == "unknown_product"


def test_lines_are_checked_in_the_given_order() -> None:
    command = _order(("balm", 99, "120.00"), ("unheard-of", 1, "1.00"))

    assert _refusal(command) == "insufficient_stock"


def test_stock_held_by_accepted_orders_is_not_available() -> None:
    held = {"balm": [replace(b, taken=b.quantity - 1) for b in _stock()["balm"]]}

    assert _refusal(_order(("balm", 3, "120.00")), held) == "insufficient_stock"
    order, _ = place_order(False, _order(("balm", 2, "120.00")), LISTINGS, held)
    assert [p.batch_id for p in order.lines[0].portions] == ["balm-1", "balm-2"]


# --- cancelling -------------------------------------------------------------------------------------------


def _cancel(order: Order | None) -> Order:
    return cancel(order, partner.OrderCancelled(order_id="ord-1", reason="changed their mind"))


def _cancel_refusal(order: Order | None) -> str:
    with pytest.raises(RuleViolation) as refused:
        _cancel(order)
    return refused.value.rule


def test_cancel_rules() -> None:
    open_order = _accepted(("balm", 1, "120.00"))

    assert _cancel(open_order).status == "cancelled"
    assert _cancel_refusal(None) == "unknown_order"
    assert _cancel_refusal(replace(open_order, status="paid")) == "already_settled"
    assert _cancel_refusal(replace(open_order, status="cancelled")) == "order_not_open"


def test_cancelling_returns_stock_so_the_next_order_takes_the_earliest_batch_again() -> None:
    stock = _stock()
    first, taken = place_order(False, _order(("balm", 4, "120.00")), LISTINGS, stock)
    stock["balm"] = taken
    cancelled = _cancel(first)

    stock["balm"] = give_back(stock["balm"], cancelled.portions)
    second, _ = place_order(False, _order(("balm", 1, "120.00"), order_id="ord-2"), LISTINGS, stock)

    assert [b.taken for b in stock["balm"]] == [0, 0]
    assert second.lines[0].portions[0].batch_id == "balm-1"


# --- paying -----------------------------------------------------------------------------------------------


def _payment(amount: str) -> partner.PaymentReceived:
    return partner.PaymentReceived(payment_id="pay-1", order_id="ord-1", amount_thb=Decimal(amount))


def _pay_refusal(order: Order | None, amount: str) -> str:
    with pytest.raises(RuleViolation) as refused:
        pay(order, _payment(amount), PAID)
    return refused.value.rule


def test_payment_rules_in_order() -> None:
    order = _accepted(("balm", 1, "120.00"))

    assert _pay_refusal(None, "120.00") == "unknown_order"
    assert _pay_refusal(replace(order, status="cancelled"), "1.00") == "order_not_open"
    assert _pay_refusal(replace(order, status="paid"), "1.00") == "already_settled"
    assert _pay_refusal(order, "120.01") == "amount_mismatch"


def test_payment_settles_per_enterprise() -> None:
    order = _accepted(("balm", 5, "120.00"), ("tea", 3, "45.50"))

    paid, settlements = pay(order, _payment("736.50"), PAID)

    assert (paid.status, paid.payment_id) == ("paid", "pay-1")
    assert [_summary(s) for s in settlements] == [
        ("ord-1:ent-a", "ent-a", "Nan", "600.00", "20.00", "2.05", ("balm",)),
        ("ord-1:ent-b", "ent-b", "Chiang Rai", "136.50", "15.00", "0.00", ("tea",)),
    ]
    assert {s.settled_at for s in settlements} == {PAID}
    assert {(s.order_id, s.payment_id) for s in settlements} == {("ord-1", "pay-1")}


def test_one_settlement_sums_every_line_of_its_enterprise() -> None:
    listings = LISTINGS | {"soap": _listing("soap", "10.00")}
    soap = Batch("soap-1", "soap", "ent-a", "Nan", 10, date(2025, 1, 1), Decimal("7.00"), Decimal("1.00"))
    command = _order(("balm", 1, "120.00"), ("tea", 1, "45.50"), ("soap", 3, "10.00"))
    order, _ = place_order(False, command, listings, _stock() | {"soap": [soap]})

    _, settlements = pay(order, _payment("195.50"), PAID)

    assert [_summary(s) for s in settlements] == [
        ("ord-1:ent-a", "ent-a", "Nan", "150.00", "5.43", "0.32", ("balm", "soap")),
        ("ord-1:ent-b", "ent-b", "Chiang Rai", "45.50", "5.00", "0.00", ("tea",)),
    ]


def _summary(s: Settlement) -> tuple[object, ...]:
    money = (s.revenue_thb, s.cost_thb, s.non_local_cost_thb)
    return (s.settlement_id, s.enterprise_id, s.province, *(str(m) for m in money), s.product_ids)
