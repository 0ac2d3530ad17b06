"""Which faults the suite injects, where in the stream, and against which service: all drawn from the seed.

Faults are placed by position in the publishing stream (records sent before it), one per slot of equal width
with a random offset inside it, so they fall at unforeseeable moments but never on top of each other. As the
suite publishes at a steady rate the chain keeps up with, a position is a moment of work in flight.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from fivecogs_shared.contracts import COGS

KILL = "kill -9"
BROKER = "broker restart"
POSTGRES = "postgres restart"
RELAY = "relay killed after publish"
REWIND = "group rewound to 0"
REBALANCE = "rebalance"
KINDS = (KILL, BROKER, POSTGRES, RELAY, REWIND, REBALANCE)
WHOLE_CHAIN = "all"  # the target of a broker or Postgres restart


@dataclass(frozen=True)
class Mode:
    """How big a run is: --short for `make test`, the full run for `make faults`."""

    events: int
    rate: float  # records published per second
    copy_delay_seconds: float  # how long after an event its copy goes out, roughly
    counts: tuple[tuple[str, int], ...]  # how many faults of each kind
    catch_up_timeout: float = 300.0  # seconds a wave may take to settle before the chain counts as stalled
    # With --arrival shuffled: records per block (`simulate.arrival`), about five seconds of publishing at the
    # rate (copies and poison included), so that what a record waits for comes well within the services' hold.
    block: int = 300

    @property
    def copy_delay_events(self) -> int:
        # Copies make up half of the stream once they start, so an event's copy leaves 2 × delay records later.
        return max(1, int(self.copy_delay_seconds * self.rate / 2))


FULL = Mode(
    events=20_000,
    rate=120.0,
    copy_delay_seconds=150.0,
    counts=((KILL, 8), (BROKER, 2), (POSTGRES, 2), (RELAY, 2), (REWIND, 1), (REBALANCE, 1)),
    block=600,
)
SHORT = Mode(
    events=2_000,
    rate=60.0,
    copy_delay_seconds=8.0,
    counts=((KILL, 5), (BROKER, 1), (POSTGRES, 1), (RELAY, 1), (REWIND, 1), (REBALANCE, 1)),
    catch_up_timeout=120.0,
)


@dataclass(frozen=True)
class Fault:
    number: int
    kind: str
    target: str  # a cog, WHOLE_CHAIN, or "" for a relay kill (chosen when it happens: the busiest service)
    at: int  # records published before it


def plan_faults(mode: Mode, sent: int, seed: int) -> list[Fault]:
    rng = random.Random(f"faults-{seed}")
    kinds = [kind for kind, count in mode.counts for _ in range(count)]
    rng.shuffle(kinds)
    targets = _kill_targets(rng, kinds.count(KILL))
    width = sent * 0.94 / len(kinds)  # the first and last 3 % stay calm: start-up and the final drain
    faults = []
    for slot, kind in enumerate(kinds):
        at = int(sent * 0.03 + width * (slot + rng.uniform(0.15, 0.85)))
        faults.append(Fault(slot + 1, kind, _target(kind, rng, targets), at))
    return faults


def _kill_targets(rng: random.Random, kills: int) -> list[str]:
    """Every service at least once (when there are five kills or more), then any."""
    first: list[str] = rng.sample(list(COGS), len(COGS))
    return (first + [rng.choice(COGS) for _ in range(max(0, kills - len(COGS)))])[:kills]


def _target(kind: str, rng: random.Random, kill_targets: list[str]) -> str:
    if kind == KILL:
        return kill_targets.pop()
    if kind in (BROKER, POSTGRES):
        return WHOLE_CHAIN
    if kind == RELAY:
        return ""
    return rng.choice(COGS)
