"""FIFO stock: oldest batch first by (produced_on, batch_id), portion costs rounded half-up, returns."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from fivecogs_marketing.domain.stock import Batch, Portion, available, give_back, portion_of, take_fifo


def batch(batch_id: str, quantity: int, cost: str, non_local: str = "0.00", on: date = date(2025, 1, 1)) -> Batch:
    return Batch(batch_id, "prod-1", "ent-1", "Nan", quantity, on, Decimal(cost), Decimal(non_local))


def test_portion_cost_is_the_batch_cost_pro_rata_rounded_half_up() -> None:
    # 100.01 / 2 = 50.005: half-up gives 50.01 where banker's rounding would give 50.00.
    portion = portion_of(batch("b1", 2, "100.01", "0.05"), 1)

    assert portion == Portion("b1", 1, Decimal("50.01"), Decimal("0.03"))


def test_each_portion_is_rounded_on_its_own() -> None:
    thirds = batch("b1", 3, "10.00", "10.00")

    assert portion_of(thirds, 1).cost_thb == Decimal("3.33")
    assert portion_of(thirds, 2).cost_thb == Decimal("6.67")
    assert portion_of(thirds, 3).non_local_cost_thb == Decimal("10.00")


def test_oldest_batch_first_then_batch_id_breaks_ties() -> None:
    late = batch("a-late", 5, "50.00", on=date(2025, 2, 1))
    early_b = batch("b-early", 5, "50.00", on=date(2025, 1, 1))
    early_a = batch("a-early", 5, "50.00", on=date(2025, 1, 1))

    portions, _ = take_fifo([late, early_b, early_a], 12)

    assert [(p.batch_id, p.quantity) for p in portions] == [("a-early", 5), ("b-early", 5), ("a-late", 2)]


def test_a_line_spanning_two_batches_takes_what_is_left_of_the_first() -> None:
    first = replace(batch("b1", 10, "100.00", "40.00", date(2025, 1, 1)), taken=7)
    second = batch("b2", 4, "10.00", "1.00", date(2025, 1, 2))

    portions, after = take_fifo([second, first], 5)

    assert portions == [
        Portion("b1", 3, Decimal("30.00"), Decimal("12.00")),
        Portion("b2", 2, Decimal("5.00"), Decimal("0.50")),
    ]
    assert {b.batch_id: b.taken for b in after} == {"b1": 10, "b2": 2}
    assert available(after) == 2


def test_emptied_batches_are_skipped() -> None:
    empty = replace(batch("b1", 3, "30.00", on=date(2025, 1, 1)), taken=3)

    portions, _ = take_fifo([empty, batch("b2", 3, "9.00", on=date(2025, 1, 2))], 1)

    assert portions == [Portion("b2", 1, Decimal("3.00"), Decimal("0.00"))]


def test_given_back_portions_become_available_again() -> None:
    b1, b2 = batch("b1", 3, "30.00", on=date(2025, 1, 1)), batch("b2", 3, "9.00", on=date(2025, 1, 2))
    portions, after = take_fifo([b1, b2], 4)

    returned = give_back(after, portions)

    assert {b.batch_id: b.taken for b in returned} == {"b1": 0, "b2": 0}
    again, _ = take_fifo(returned, 1)
    assert again == [Portion("b1", 1, Decimal("10.00"), Decimal("0.00"))]
