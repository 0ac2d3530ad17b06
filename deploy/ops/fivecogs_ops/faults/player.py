"""Publishing a wave at a steady rate, as partners do, and striking each fault when its position comes up.

The rate is one the chain keeps up with, so every fault lands while work is in flight rather than on an idle
chain or on a backlog that was all published in the first second. After a fault the pace starts again (no
burst to make up for the time the fault took).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Sequence

from fivecogs_ops.faults.injectors import Injector
from fivecogs_ops.faults.plan import Fault
from fivecogs_ops.faults.progress import SuiteProgress
from fivecogs_ops.faults.workload import Published, Wave
from fivecogs_ops.simulate.intake import COG_OF_TOPIC
from fivecogs_ops.simulate.play import Publisher

CHUNK = 10  # records per send: small enough to hold the rate, large enough to batch
LOOKAHEAD = 300  # records to look ahead when a fault wants the busiest service


class Player:
    def __init__(
        self,
        publisher: Publisher,
        injector: Injector,
        faults: Sequence[Fault],
        stream: Sequence[Published],
        progress: SuiteProgress,
    ) -> None:
        self.publisher, self.injector, self.stream, self.progress = publisher, injector, stream, progress
        self.faults = deque(sorted(faults, key=lambda fault: fault.at))
        self.position = 0
        self.sent_at: list[float] = []
        self.copy_gaps: list[float] = []  # seconds between the two copies of each event

    def busiest(self) -> str:
        """The service whose ingest topic gets the most of the next records."""
        upcoming = self.stream[self.position : self.position + LOOKAHEAD] or self.stream[-LOOKAHEAD:]
        counts = Counter(COG_OF_TOPIC[published.sent.topic] for published in upcoming)
        return counts.most_common(1)[0][0]

    async def play(self, wave: Wave, rate: float) -> float:
        """Publish the wave; seconds it took (faults included)."""
        started = paced_from = time.monotonic()
        paced = 0
        for i in range(0, len(wave.records), CHUNK):
            if await self._strike_due():
                paced_from, paced = time.monotonic(), 0
            chunk = wave.records[i : i + CHUNK]
            await self.publisher.publish([published.sent for published in chunk])
            self._sent(chunk)
            self.progress.sent(len(chunk))
            paced += len(chunk)
            await asyncio.sleep(max(0.0, paced_from + paced / rate - time.monotonic()))
        return time.monotonic() - started

    async def _strike_due(self) -> bool:
        struck = False
        while self.faults and self.faults[0].at <= self.position:
            self.progress.fault(await self.injector.inject(self.faults.popleft()))
            struck = True
        return struck

    def _sent(self, chunk: Sequence[Published]) -> None:
        now = time.monotonic()
        for published in chunk:
            self.sent_at.append(now)
            if published.first is not None:
                self.copy_gaps.append(now - self.sent_at[published.first])
        self.position += len(chunk)
