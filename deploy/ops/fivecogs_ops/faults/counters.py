"""How many redeliveries the inboxes absorbed: `fivecogs_events_total{outcome="duplicate"}` of every service
process, scraped every few seconds. A process killed with -9 takes its last few seconds of counts with it, so
the figure is a floor."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx

DUPLICATES = re.compile(r'^fivecogs_events_total\{[^}]*outcome="duplicate"[^}]*\}\s+([0-9.e+]+)$', re.MULTILINE)
EVERY = 2.0


class DuplicateCounter:
    def __init__(self, processes: Callable[[], dict[str, tuple[int, str]]]) -> None:
        """`processes`: name -> (pid, /metrics URL) of every service process running now."""
        self.processes = processes
        self.last: dict[tuple[str, int], float] = {}  # the last count of each process that ever ran

    @property
    def total(self) -> int:
        return int(sum(self.last.values()))

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                await self.scrape(client)
                await asyncio.sleep(EVERY)

    async def scrape_now(self) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            await self.scrape(client)

    async def scrape(self, client: httpx.AsyncClient) -> None:
        for name, (pid, url) in self.processes().items():
            try:
                text = (await client.get(url)).text
            except httpx.HTTPError:
                continue  # starting, stopping or killed: its last count stands
            self.last[(name, pid)] = sum(float(value) for value in DUPLICATES.findall(text))
