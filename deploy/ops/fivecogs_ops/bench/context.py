"""What every stage works with: the cluster, the service processes, the Kafka probe, the run's tag, and where
progress lines go (stderr)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from fivecogs_ops.bench.environment import Cluster
from fivecogs_ops.bench.kafka import Probe
from fivecogs_ops.services import ServiceProcesses


@dataclass
class Bench:
    cluster: Cluster
    processes: ServiceProcesses
    probe: Probe
    run: str
    say: Callable[[str], None]

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.cluster.database_url)
