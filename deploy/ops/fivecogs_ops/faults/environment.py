"""The fault suite's own world: a Kafka broker, a Postgres server and the five services, under `.stack/faults/`
on ports of their own, so that the processes it kills and restarts are never anybody else's.

Each run starts from empty data (the report is then exactly the model's) and stops every process it started,
pass or fail. The broker jars are shared with the main stack (`.stack/kafka/libs`): they are only read.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from fivecogs_ops.auth import operator_token
from fivecogs_ops.principals import ADMIN, service_username
from fivecogs_ops.services import ServiceProcesses
from fivecogs_ops.simulate.arrival import ORDERED, SHUFFLED, Arrival
from fivecogs_ops.simulate.holds import HOLD_SECONDS as SIMULATION_HOLD_SECONDS
from fivecogs_ops.simulate.holds import hold_env
from fivecogs_ops.stack import LocalStack, StackError, StackState, repo_root
from fivecogs_shared.contracts import COGS
from fivecogs_shared.kafka_access import KafkaAccess

# Far from the main stack's 9092/9093/5433 and the services' 8081-8085; the first free port from here is taken.
PREFERRED = StackState(kafka_port=19092, controller_port=19093, postgres_port=15433)
HTTP_PORTS_FROM = 18081
SPARE = "spare"  # the name of the second instance of a service, started for the rebalance
# How long the suite's services hold an event that refers to something not applied yet. Ordered, nothing arrives
# before what it refers to: only the scenario's deliberate dangling references wait, and `make run`'s hold does.
# Shuffled, a record waits for one published a wave or two later, and a fault may strike in between: Kafka
# restarted (stopped for up to half a minute on a loaded machine), a killed service rejoining its group (10 s).
# The longest wait measured (seed 4, --short, a broker restart in that wave) was 48.5 s: a minute and a half
# leaves room for two faults. The dangling references expire that long after the last of them, within the run.
HOLD_SECONDS: dict[Arrival, float] = {ORDERED: SIMULATION_HOLD_SECONDS, SHUFFLED: 90.0}

Progress = Callable[[str], None]


class FaultEnvironment:
    def __init__(self, repo: Path | None = None, arrival: Arrival = ORDERED) -> None:
        self.repo = repo or repo_root()
        self.hold_seconds = HOLD_SECONDS[arrival]
        self.dir = self.repo / ".stack" / "faults"
        self.stack = LocalStack(
            self.repo, stack_dir=self.dir, kafka_libs=self.repo / ".stack" / "kafka" / "libs", preferred=PREFERRED
        )
        self.services: ServiceProcesses | None = None
        self.state: StackState | None = None
        self._lock: TextIO | None = None

    @property
    def env(self) -> dict[str, str]:
        assert self.state is not None, "the stack is not up"
        return self.state.env()

    @property
    def kafka(self) -> KafkaAccess:
        """The suite acts as the provisioning admin (partners, offsets); the services use their own principals."""
        assert self.state is not None, "the stack is not up"
        return self.state.kafka(ADMIN)

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def up(self, progress: Progress) -> None:
        """A fresh stack: whatever an interrupted earlier run left is stopped and wiped first."""
        self._take_lock()
        self.stack.down(progress=lambda _: None)
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.state = self.stack.up(progress=progress)
        ports = _free_ports(HTTP_PORTS_FROM, [*COGS, SPARE])
        env = {
            **self.env,
            **{f"FIVECOGS_{cog.upper()}_RELAY_POLL_SECONDS": "0.2" for cog in COGS},
            **hold_env(self.hold_seconds),
        }
        kafka: dict[str, KafkaAccess] = {cog: self.state.kafka(service_username(cog)) for cog in COGS}
        # The suite's own token (a new one each run: the directory was just wiped), never a deployment's.
        token = operator_token(self.dir)
        self.services = ServiceProcesses(
            env=env, log_dir=self.stack.logs, ports=ports, kafka=kafka, operator_token=token
        )

    @property
    def owned(self) -> bool:
        """Whether this run holds the suite's stack (and so has something to stop)."""
        return self._lock is not None

    def processes(self) -> ServiceProcesses:
        assert self.services is not None, "the stack is not up"
        return self.services

    def close(self, progress: Progress) -> None:
        """Stop the services, then the broker and Postgres; the logs stay under `.stack/faults/logs`."""
        if self._lock is None:
            return  # never started, or another run holds the stack: nothing here is ours to stop
        if self.services is not None:
            self.services.stop_all(grace=12)
        self.stack.down(progress=progress)
        for data in (self.stack.kafka_dir / "data", self.stack.pg_data.parent):
            shutil.rmtree(data, ignore_errors=True)  # gigabytes of test data: the logs are what is worth keeping
        self._lock.close()  # releases it
        self._lock = None

    def _take_lock(self) -> None:
        """One suite at a time: a second one would stop and wipe the first one's stack."""
        path = self.dir.parent / "faults.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StackError(f"a fault suite is already running ({holder}); wait for it to finish") from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._lock = handle


def _free_ports(start: int, names: list[str]) -> dict[str, int]:
    ports: dict[str, int] = {}
    candidate = start
    for name in names:
        while not _bindable(candidate):
            candidate += 1
        ports[name] = candidate
        candidate += 1
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
