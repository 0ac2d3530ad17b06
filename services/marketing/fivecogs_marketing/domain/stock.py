"""Stock: the units of assessed batches not yet sold, taken first in, first out, each portion charged with
its share of the batch's cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from fivecogs_shared.money import round_half_up


@dataclass(frozen=True)
class Batch:
    batch_id: str
    product_id: str
    enterprise_id: str
    province: str
    quantity: int
    produced_on: date
    cost_thb: Decimal
    non_local_cost_thb: Decimal
    taken: int = 0  # units held by accepted orders that are not cancelled

    @property
    def available(self) -> int:
        return self.quantity - self.taken

    @property
    def fifo_key(self) -> tuple[date, str]:
        return (self.produced_on, self.batch_id)


@dataclass(frozen=True)
class Portion:
    """Units of one order line taken from one batch, with that batch's cost for those units."""

    batch_id: str
    quantity: int
    cost_thb: Decimal
    non_local_cost_thb: Decimal


def available(batches: Sequence[Batch]) -> int:
    return sum(b.available for b in batches)


def portion_of(batch: Batch, units: int) -> Portion:
    # Each portion is rounded on its own: selling a batch in pieces may charge a satang more or less than its
    # cost in total, and that is the rule both the services and the simulator follow.
    return Portion(
        batch.batch_id,
        units,
        round_half_up(batch.cost_thb * units / batch.quantity),
        round_half_up(batch.non_local_cost_thb * units / batch.quantity),
    )


def take_fifo(batches: Sequence[Batch], units: int) -> tuple[list[Portion], list[Batch]]:
    """Take `units` from the oldest batches first; returns the portions and the batches as they are after.
    The caller has checked that enough is available."""
    portions: list[Portion] = []
    after: list[Batch] = []
    for batch in sorted(batches, key=lambda b: b.fifo_key):
        take = min(units, batch.available)
        if take > 0:
            portions.append(portion_of(batch, take))
            batch = replace(batch, taken=batch.taken + take)
            units -= take
        after.append(batch)
    assert units == 0, "take_fifo needs enough stock"
    return portions, after


def give_back(batches: Sequence[Batch], portions: Sequence[Portion]) -> list[Batch]:
    """Return cancelled portions to the batches they were taken from."""
    returned: dict[str, int] = {}
    for portion in portions:
        returned[portion.batch_id] = returned.get(portion.batch_id, 0) + portion.quantity
    return [replace(b, taken=b.taken - returned[b.batch_id]) for b in batches if b.batch_id in returned]
