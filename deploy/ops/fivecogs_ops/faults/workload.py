"""What the fault suite publishes: one seeded scenario of at least N partner events, poisoned and sent twice.

- the scenario is `simulate.build_scenario` with as many enterprises as it takes to reach N events, poison
  included, cut in the same steps, and published in the arrival order asked for (`simulate.arrival`): step by
  step, a step in waves where one partner's record follows another's with the same key (ordered), or block by
  block in a seeded random order (shuffled); the chain catches up between waves, so no outcome depends on a
  race;
- poison: after one record in eight, a bad twin (`poison.make`), the kinds in turn, so that over a ninth of
  the events are bad and every kind is well represented;
- copies: every event is published a second time, about `2 × copy_delay` records later (at the suite's
  publishing rate, minutes in the full run and seconds with --short); those still due after the last step form
  a last wave. One event in `HOLD_EVERY` has its copy held back to the very end of that wave, so some copies
  arrive as long after their original as the run allows (five minutes and more in the full run): a partner
  retrying long after the fact.

The model is given the exact publishing order, so it predicts the outcome of both copies of every record.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from fivecogs_ops.faults import poison
from fivecogs_ops.simulate.arrival import BLOCK_RECORDS, ORDERED, Arrival, arrange
from fivecogs_ops.simulate.records import Sent
from fivecogs_ops.simulate.scenario import Scenario, build_scenario

POISON_EVERY = 8  # one bad twin per eight records: 1/9 of all events, above issue 4's 10 %
HOLD_EVERY = 25  # one event in 25 has its copy sent at the very end
RECORDS_PER_ENTERPRISE, FIXED_RECORDS = 22.5, 45  # what build_scenario yields, roughly (to size it)


@dataclass(frozen=True)
class Published:
    """One record on its way out; `first` is the position of its first copy (None: this is the first)."""

    sent: Sent
    first: int | None = None


@dataclass(frozen=True)
class Wave:
    name: str
    records: tuple[Published, ...]


@dataclass(frozen=True)
class Workload:
    scenario: Scenario
    waves: tuple[Wave, ...]
    poison: Counter[str]  # bad twins by poison kind
    events: int  # distinct records (scenario + poison); each is published twice
    arrival: Arrival = ORDERED

    @property
    def sent(self) -> int:
        return sum(len(wave.records) for wave in self.waves)

    def records(self) -> Iterator[Sent]:
        """Every record in publishing order: what the model is given."""
        for wave in self.waves:
            for published in wave.records:
                yield published.sent


def build_workload(
    events: int,
    seed: int,
    copy_delay: int,
    tag: str | None = None,
    arrival: Arrival = ORDERED,
    block: int = BLOCK_RECORDS,
) -> Workload:
    scenario = _scenario_of_size(events, seed, tag)
    rng = random.Random(seed)
    made = Counter[str]()
    poisoned = [(step.name, _poisoned(list(step.records), scenario.tag, rng, made)) for step in scenario.steps]
    steps = [named for stage in arrange(poisoned, arrival, seed, block) for named in stage.named_waves()]
    distinct = sum(len(records) for _, records in steps)
    return Workload(scenario, tuple(_with_copies(steps, copy_delay)), made, distinct, arrival)


def _scenario_of_size(events: int, seed: int, tag: str | None) -> Scenario:
    """The smallest scenario (give or take an enterprise) that reaches `events` with its poison."""
    wanted = events / (1 + 1 / POISON_EVERY)
    enterprises = max(3, math.ceil((wanted - FIXED_RECORDS) / RECORDS_PER_ENTERPRISE))
    while True:
        scenario = build_scenario(enterprises, seed, tag)
        if len(scenario) >= wanted:
            return scenario
        enterprises += max(1, math.ceil((wanted - len(scenario)) / RECORDS_PER_ENTERPRISE))


def _poisoned(records: list[Sent], tag: str, rng: random.Random, made: Counter[str]) -> list[Sent]:
    """The step's records with a bad twin right after each chosen one (a conflict must follow its original)."""
    candidates = [i for i, sent in enumerate(records) if poison.can_template(sent)]
    chosen = set(rng.sample(candidates, min(len(candidates), math.ceil(len(records) / POISON_EVERY))))
    kinds = list(poison.KINDS)
    out: list[Sent] = []
    for i, sent in enumerate(records):
        out.append(sent)
        if i in chosen:
            total = sum(made.values())
            kind = kinds[total % len(kinds)]
            out.append(poison.make(kind, sent, f"{tag}-pz{total + 1:06d}", turn=made[kind]))
            made[kind] += 1
    return out


def _with_copies(steps: Sequence[tuple[str, Sequence[Sent]]], delay: int) -> Iterator[Wave]:
    """Each step as a wave, the copy of an event going out just before the event `delay` events later (so the
    copies do not bunch up); the copies still due after the last step form a last wave, the held ones last."""
    due: deque[tuple[int, int, Sent]] = deque()  # (event number, position of its first copy, record)
    held: list[tuple[int, int, Sent]] = []
    position = number = 0
    for name, records in steps:
        wave: list[Published] = []
        for sent in records:
            if due and due[0][0] + delay <= number:
                _, first, copy = due.popleft()
                wave.append(Published(copy, first))
                position += 1
            wave.append(Published(sent))
            (held if number % HOLD_EVERY == 0 else due).append((number, position, sent))
            position, number = position + 1, number + 1
        yield Wave(name, tuple(wave))
    last = [*due, *held]
    yield Wave("9 the last copies", tuple(Published(sent, first) for _, first, sent in last))
