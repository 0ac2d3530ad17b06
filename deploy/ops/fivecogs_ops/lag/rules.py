"""Burrow's evaluation of a consumer, over a sliding window of samples, made fit to page on. Pure functions: no
clock, no I/O.

Per partition, in this order (the first that applies):
- OK "caught up": the latest lag is 0, whatever came before;
- STOP "no members: nothing consumes lag N": the group has no members (the service is down) — at once, whatever
  the window saw earlier;
- STOP "lag N waiting N s with no commit (window W s)": nothing committed since there was first something to
  commit (the first sample with lag > 0 after the last commit), for longer than the window; a quiet period with
  nothing to commit does not count;
- REWIND "committed offset went back from A to B": inside the window;
- OK "lag reached zero in the window";
- WARN "lag N in the only sample of the window: look again to judge";
- STALL "committed offset unmoved at C for N s": the offset did not move across the window while lag stayed > 0;
- WARN "offsets move but lag never falls (A → B)": the consumer is falling behind;
- OK "consuming; lag fell in the window".
A group's status is its worst partition's (the CLI, the page's JSON and the metrics read the same report).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise, takewhile


class Status(IntEnum):
    """Ordered by severity, so `max` gives the worst."""

    OK = 0
    WARN = 1
    REWIND = 2
    STALL = 3
    STOP = 4

    @property
    def exit_code(self) -> int:
        """For scripts: 0 all OK, 1 some WARN, 2 some STALL/STOP/REWIND."""
        return min(int(self), 2)


@dataclass(frozen=True)
class Observation:
    """One partition of one group at one moment."""

    time: float
    committed: int | None
    end: int
    members: int | None = None  # the group's members then (None: not recorded)

    @property
    def lag(self) -> int:
        return max(0, self.end - (self.committed or 0))


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str


def last_change(history: Sequence[Observation]) -> float:
    """When the committed offset took its current value, as far as the history shows (its start, if never)."""
    since = history[-1].time
    for seen in reversed(history):
        if seen.committed != history[-1].committed:
            break
        since = seen.time
    return since


def behind_since(history: Sequence[Observation]) -> float:
    """Since when the current committed offset has had something after it to commit: the first observation with
    lag > 0 from the last change on. A quiet period with nothing to commit is not a consumer failing to commit."""
    changed = last_change(history)
    return next((seen.time for seen in history if seen.time >= changed and seen.lag > 0), history[-1].time)


def _gone_since(history: Sequence[Observation]) -> str:
    """Since when the group has had no members, as far as the samples show: ` since 18:42:10Z`, or ` since before
    …` when every sample kept shows it without members; nothing when no sample recorded it."""
    run = list(takewhile(lambda seen: seen.members == 0, reversed(history)))
    if not run:
        return ""
    since = time.strftime("%H:%M:%SZ", time.gmtime(run[-1].time))
    return f" since before {since}" if len(run) == len(history) else f" since {since}"


def partition_status(history: Sequence[Observation], now: float, window: float, *, members: int) -> Verdict:
    """Judge one partition; `history` is every known observation, oldest first, the last one being current;
    `members` is how many members its group has now (0: nothing can consume)."""
    latest = history[-1]
    if latest.lag == 0:
        return Verdict(Status.OK, "caught up")
    if not members:
        return Verdict(Status.STOP, f"no members{_gone_since(history)}: nothing consumes lag {latest.lag}")
    recent = [seen for seen in history if seen.time >= now - window] or [latest]
    waiting = now - behind_since(history)
    if waiting > window:
        return Verdict(Status.STOP, f"lag {latest.lag} waiting {waiting:.0f}s with no commit (window {window:.0f}s)")
    if rewind := _rewind(recent):
        return Verdict(Status.REWIND, f"committed offset went back from {rewind[0]} to {rewind[1]}")
    if any(seen.lag == 0 for seen in recent):
        return Verdict(Status.OK, "lag reached zero in the window")
    if len(recent) < 2:
        return Verdict(Status.WARN, f"lag {latest.lag} in the only sample of the window: look again to judge")
    if recent[0].committed == latest.committed:
        return Verdict(Status.STALL, f"committed offset unmoved at {latest.committed} for {waiting:.0f}s")
    lags = [seen.lag for seen in recent]
    if all(later >= earlier for earlier, later in pairwise(lags)):
        return Verdict(Status.WARN, f"offsets move but lag never falls ({lags[0]} → {lags[-1]})")
    return Verdict(Status.OK, "consuming; lag fell in the window")


def _rewind(recent: Sequence[Observation]) -> tuple[int, int] | None:
    for earlier, later in pairwise(recent):
        if earlier.committed is not None and later.committed is not None and later.committed < earlier.committed:
            return earlier.committed, later.committed
    return None


def group_status(verdicts: Iterable[Verdict]) -> Verdict:
    """The worst partition speaks for the group; a group with no partitions has nothing behind."""
    return max(verdicts, key=lambda v: v.status, default=Verdict(Status.OK, "no partitions"))


@dataclass(frozen=True)
class Trend:
    direction: str  # "up" (falling behind), "down" (catching up) or "flat"
    rate: float  # lag change in records per second; negative while draining
    drain_seconds: float | None  # at this rate, time until lag is 0 (None when not draining)

    @property
    def arrow(self) -> str:
        return {"up": "↑", "down": "↓"}.get(self.direction, "→")


def trend(
    lags: Sequence[tuple[float, int]], now: float, horizon: float = 600.0, gap: float = 10.0, samples: int = 3
) -> Trend:
    """Is it getting better? The latest lag against an earlier (time, lag) point: the last one at least `gap`
    seconds older, or `samples` samples back if that is more recent (or the oldest within `horizon`). Recent
    enough that a catch-up just before a stop does not pass for draining; far enough not to flicker."""
    recent = [point for point in lags if point[0] >= now - horizon]
    if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
        return Trend("flat", 0.0, 0.0 if recent and recent[-1][1] == 0 else None)
    end, last = recent[-1]
    by_gap = next((p for p in reversed(recent) if p[0] <= end - gap), recent[0])
    start, first = max(by_gap, recent[max(0, len(recent) - 1 - samples)])
    rate = (last - first) / (end - start)
    direction = "up" if last > first else "down" if last < first else "flat"
    drain = 0.0 if last == 0 else (last / -rate if rate < 0 else None)
    return Trend(direction, rate, drain)
