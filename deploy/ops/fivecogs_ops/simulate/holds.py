"""How long the services a simulation plays on hold an event, and waiting, at the end of a run, for the events
still held: each gets its final outcome when what it waits for comes, or when its wait expires.

The services hold an event that refers to something not applied yet for `FIVECOGS_HOLD_SECONDS` (300 s by
default) and reject it only then. A scenario refers to things that never come on purpose (a payment of an order
nobody placed, a listing of a product nobody made), so its last answers come one hold after its last records.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

from fivecogs_ops.simulate.collector import Collector
from fivecogs_ops.simulate.compare import Holds, holds_seen

HOLD_ENV = "FIVECOGS_HOLD_SECONDS"
# The hold of the services `make run` and the end-to-end tests start. Long enough for what a shuffled arrival
# publishes late (a record waits for one of its own block: a few waves, each caught up in seconds), short enough
# that the scenario's deliberate dangling references are rejected within the run rather than minutes after it.
HOLD_SECONDS = 30.0
GRACE_SECONDS = 30.0  # how long past the latest `until` a held event may take to be answered: a busy expiry loop


def hold_env(seconds: float = HOLD_SECONDS) -> dict[str, str]:
    """The environment that gives every service started with it this hold (FIVECOGS_HOLD_SECONDS, when set in
    the caller's environment, wins)."""
    return {HOLD_ENV: os.environ.get(HOLD_ENV) or f"{seconds:g}"}


async def await_outcomes(
    collector: Collector,
    tag: str,
    *,
    grace: float = GRACE_SECONDS,
    poll: float = 0.5,
    progress: Callable[[Holds], None] | None = None,
) -> float:
    """Until every event of the run that the collector saw held has its final outcome, or the latest `until` of
    those still held is `grace` seconds past (what is left is then a mismatch: `Holds.unresolved`). Seconds taken."""
    started = time.monotonic()
    while True:
        await collector.read_to_end()
        holds = holds_seen(collector.records, tag)
        latest = holds.latest_until
        if latest is None:
            return time.monotonic() - started
        if progress:
            progress(holds)
        if (datetime.now(UTC) - latest).total_seconds() > grace:
            return time.monotonic() - started
        await asyncio.sleep(poll)
