"""A seeded scenario of partner events, in steps.

Events on different keys or topics may be processed in any order, so the scenario is cut into steps and the
player waits for the whole chain to catch up after each: within a step, no outcome depends on how two keys
race. The same seed and tag always give the same records, byte for byte; the tag (`run-<seed>-<random>` by
default) prefixes every id, so runs on one stack never collide.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from fivecogs_ops.simulate import knowledge, market, orders, payments, production, setup
from fivecogs_ops.simulate.records import Sent
from fivecogs_ops.simulate.story import Story

MIN_ENTERPRISES = 3  # one per sector: fewer cannot exercise the channel rules


@dataclass(frozen=True)
class Step:
    name: str
    records: tuple[Sent, ...]


@dataclass(frozen=True)
class Scenario:
    seed: int
    tag: str
    enterprises: int
    steps: tuple[Step, ...]

    def records(self) -> Iterator[Sent]:
        for step in self.steps:
            yield from step.records

    @property
    def partners(self) -> dict[str, tuple[str, ...]]:
        """Every partner that sends records, with the cogs it writes to: what provisioning gives it."""
        cogs: dict[str, set[str]] = {}
        for sent in self.records():
            cogs.setdefault(sent.partner, set()).add(sent.topic.split(".")[1])
        return {partner: tuple(sorted(found)) for partner, found in sorted(cogs.items())}

    def __len__(self) -> int:
        return sum(len(step.records) for step in self.steps)


def new_tag(seed: int) -> str:
    return f"run-{seed}-{secrets.token_hex(3)}"


def build_scenario(enterprises: int, seed: int, tag: str | None = None) -> Scenario:
    if enterprises < MIN_ENTERPRISES:
        raise ValueError(f"a scenario needs at least {MIN_ENTERPRISES} enterprises, one per sector")
    tag = tag or new_tag(seed)
    story = Story.begin(seed, tag)
    steps = [
        Step("1 policies, subscribers, enterprises", tuple(setup.write(story, enterprises))),
        Step("2 input deliveries and batches", tuple(production.write(story))),
        Step("3 trainings and certifications", tuple(knowledge.write(story))),
        Step("4 listings", tuple(market.write(story))),
        *(Step(f"5{'abc'[wave]} orders, wave {wave + 1}", tuple(orders.write_wave(story, wave))) for wave in range(3)),
        Step("6 payments and cancellations", tuple(payments.write_settlements(story))),
        Step("7 new policies, late orders", tuple(payments.write_late_orders(story))),
        Step("8 late payments", tuple(payments.write_late_payments(story))),
    ]
    return Scenario(seed, tag, enterprises, tuple(steps))
