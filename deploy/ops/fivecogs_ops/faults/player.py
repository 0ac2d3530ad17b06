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

from aiokafka.errors import LeaderNotAvailableError, NotLeaderForPartitionError, UnknownTopicOrPartitionError

from fivecogs_ops.faults.injectors import Injector
from fivecogs_ops.faults.plan import Fault
from fivecogs_ops.faults.progress import SuiteProgress
from fivecogs_ops.faults.workload import Published, Wave
from fivecogs_ops.simulate.play import Publisher
from fivecogs_ops.simulate.records import Sent

CHUNK = 10  # records per send: small enough to hold the rate, large enough to batch
RESEND_ATTEMPTS, RESEND_PAUSE = 40, 0.5
# Errors with which the broker refuses a batch without writing it: sending again cannot duplicate anything.
NOT_WRITTEN = (LeaderNotAvailableError, NotLeaderForPartitionError, UnknownTopicOrPartitionError)
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
        counts = Counter(published.sent.topic.split(".")[1] for published in upcoming)
        return counts.most_common(1)[0][0]

    async def play(self, wave: Wave, rate: float) -> float:
        """Publish the wave; seconds it took (faults included)."""
        started = paced_from = time.monotonic()
        paced = 0
        for i in range(0, len(wave.records), CHUNK):
            if await self._strike_due():
                paced_from, paced = time.monotonic(), 0
            chunk = wave.records[i : i + CHUNK]
            await self._publish([published.sent for published in chunk])
            self._sent(chunk)
            self.progress.sent(len(chunk))
            paced += len(chunk)
            await asyncio.sleep(max(0.0, paced_from + paced / rate - time.monotonic()))
        return time.monotonic() - started

    async def _publish(self, records: Sequence[Sent]) -> None:
        """Send and wait for every ack, as a careful partner does: a record the broker refused without writing
        it (no leader yet, right after a topic was created or the broker restarted) is sent again. A record
        whose fate is unknown (a timeout) is not: a second copy would be a duplicate the model does not expect."""
        pending = list(records)
        for attempt in range(RESEND_ATTEMPTS):
            futures = [await self._send(sent) for sent in pending]
            results = await asyncio.gather(*futures, return_exceptions=True)
            refused = [(sent, r) for sent, r in zip(pending, results, strict=True) if isinstance(r, BaseException)]
            _raise_unless_refused([error for _, error in refused])
            if not refused:
                return
            if attempt + 1 == RESEND_ATTEMPTS:
                raise refused[0][1]
            pending = [sent for sent, _ in refused]
            await asyncio.sleep(RESEND_PAUSE)

    async def _send(self, sent: Sent) -> asyncio.Future[object]:
        """The delivery future, or a future already failed when the producer refused to queue the record."""
        try:
            future: asyncio.Future[object] = await self.publisher.send(sent)
        except NOT_WRITTEN as error:
            future = asyncio.get_running_loop().create_future()
            future.set_exception(error)
        return future

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


def _raise_unless_refused(errors: list[BaseException]) -> None:
    for error in errors:
        if not isinstance(error, NOT_WRITTEN):
            raise error  # delivered or not, nobody knows: the run cannot be compared with the model any more
