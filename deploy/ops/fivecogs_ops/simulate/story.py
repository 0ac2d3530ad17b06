"""What every step of the scenario writes with: the seeded dice, the event writer, the cast and the calendar."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from fivecogs_ops.simulate.cast import Cast
from fivecogs_ops.simulate.records import EventWriter, Sent, retitled
from fivecogs_shared.money import round_half_up

# Partners write their local time, as Thai offices do: the listing rules then have to convert to UTC.
BANGKOK = timezone(timedelta(hours=7), "ICT")
YEAR = 2025


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BANGKOK)


def day_of(month: int, day: int) -> date:
    return date(YEAR, month, day)


@dataclass
class Story:
    rng: random.Random
    tag: str
    writer: EventWriter
    cast: Cast = field(default_factory=Cast)
    counters: dict[str, int] = field(default_factory=dict)

    @classmethod
    def begin(cls, seed: int, tag: str) -> Story:
        return cls(rng=random.Random(seed), tag=tag, writer=EventWriter(tag))

    def new_id(self, kind: str, width: int = 4) -> str:
        """`<tag>-<kind><n>`, zero-padded so that the ids of one kind sort as their numbers do."""
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return f"{self.tag}-{kind}{self.counters[kind]:0{width}d}"

    def event(self, ce_type: str, data: dict[str, Any], *, source: str, time: datetime, **meaning: str) -> Sent:
        return self.writer.event(ce_type, data, source=source, time=time, **meaning)

    def again(self, sent: Sent, intent: str, note: str) -> Sent:
        """The very same record once more (a partner's retry)."""
        return self.writer.add(retitled(sent, intent, note))

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def money(self, low: int, high: int) -> Decimal:
        """A random amount between two whole baht amounts, with satang (drawn as whole satang: never a float)."""
        return self.satang(low * 100, high * 100)

    def satang(self, low: int, high: int) -> Decimal:
        return Decimal(self.rng.randint(low, high)) / 100

    def price(self, unit_cost: Decimal, markup: Decimal) -> Decimal:
        """A shelf price: cost times markup, rounded to the half baht as markets do, never below 1 baht."""
        halves = round_half_up(unit_cost * markup * 2, 0)
        return max(Decimal("1.00"), (halves / 2).quantize(Decimal("0.01")))
