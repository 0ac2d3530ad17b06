"""What happened to one fault: when it struck, and how long until the chain worked again.

"Recovered" means: every affected service answers /readyz again, and each of their consumer groups has either
caught up (lag 0) or committed further than it had when the service became ready, i.e. it is draining again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fivecogs_ops.faults.plan import Fault
from fivecogs_ops.faults.probe import GroupPosition, group_members, group_position, is_ready
from fivecogs_shared.kafka_access import KafkaAccess

RECOVERY_TIMEOUT = 240.0
POLL = 0.25


@dataclass
class FaultRecord:
    fault: Fault
    target: str
    struck_at: float | None = None  # seconds into the run
    injected: bool = False
    detail: str = ""
    ready_seconds: float | None = None
    recovered_seconds: float | None = None
    stop_seconds: float | None = None  # SIGTERM to exit, when the fault stops a service gracefully
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.injected and self.recovered_seconds is not None and self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.fault.number,
            "kind": self.fault.kind,
            "target": self.target,
            "at_record": self.fault.at,
            "struck_at_seconds": _rounded(self.struck_at),
            "injected": self.injected,
            "detail": self.detail,
            "ready_seconds": _rounded(self.ready_seconds),
            "recovered_seconds": _rounded(self.recovered_seconds),
            "stop_seconds": _rounded(self.stop_seconds),
            "error": self.error,
        }


@dataclass
class RecoveryWatch:
    """Times the recovery of the services of one fault, from the moment it struck."""

    kafka: KafkaAccess
    ready_url: Callable[[str], str]  # cog -> its /readyz
    cogs: Sequence[str]
    since: float  # time.monotonic() when the fault struck
    timeout: float = RECOVERY_TIMEOUT
    # After a member died (the rebalance's second instance): the survivor is ready throughout, but the dead
    # member's partitions wait for Kafka to expel it. Ready then means "the group is down to one member".
    sole_member: bool = False
    _baseline: dict[str, GroupPosition] = field(default_factory=dict)

    async def run(self, record: FaultRecord) -> None:
        try:
            await asyncio.wait_for(self._watch(record), self.timeout)
        except TimeoutError:
            state = "not ready" if record.ready_seconds is None else "not consuming"
            record.error = f"{', '.join(self.cogs)} still {state} {self.timeout:.0f}s after the fault"

    async def _watch(self, record: FaultRecord) -> None:
        pending = list(self.cogs)
        while pending:
            pending = [cog for cog in pending if not await is_ready(self.ready_url(cog))]
            if pending:
                await asyncio.sleep(POLL)
        while self.sole_member and not await self._alone():  # noqa: ASYNC110 - polling Kafka, no event
            await asyncio.sleep(POLL)
        record.ready_seconds = time.monotonic() - self.since
        while not await self._consuming():  # noqa: ASYNC110 - Kafka has no event to wait for: look again
            await asyncio.sleep(POLL)
        record.recovered_seconds = time.monotonic() - self.since

    async def _alone(self) -> bool:
        return all([await group_members(self.kafka, cog) == 1 for cog in self.cogs])

    async def _consuming(self) -> bool:
        for cog in self.cogs:
            position = await group_position(self.kafka, cog)
            if position is None:
                return False
            baseline = self._baseline.setdefault(cog, position)
            if position.lag and position.committed <= baseline.committed:
                return False
        return True


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
