"""The bench's own world: a Kafka broker and a Postgres server under `.stack/bench/` on ports of their own, wiped
at start and stopped at the end, pass or fail (like the fault suite's, whose port picking it shares). With
`--external` the cluster named by KAFKA_* (its provisioning admin) and DATABASE_URL is used instead, and nothing
is started or wiped there: every stage has fresh partners, groups and schemas anyway.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import asyncpg

from fivecogs_ops.auth import operator_token
from fivecogs_ops.faults.environment import _free_ports
from fivecogs_ops.principals import ADMIN, service_username
from fivecogs_ops.services import ServiceProcesses
from fivecogs_ops.stack import LocalStack, StackError, StackState, masked, repo_root
from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts import COGS
from fivecogs_shared.kafka_access import AccessError, KafkaAccess

# Far from the main stack (9092/5433), the fault suite's (19092/15433) and the services' 8081-8085.
PREFERRED = StackState(kafka_port=29092, controller_port=29093, postgres_port=25433)
HTTP_PORTS_FROM = 28081
EXTERNAL_ENV = "FIVECOGS_BENCH_EXTERNAL"  # "1": use the env's cluster, like --external
REPLICA = "replica"  # the name of the second process of a service (two replicas in one group)

Progress = Callable[[str], None]


@dataclass
class Cluster:
    """Where the bench runs: the admin's access (partners, offsets, publishing facts), each service's principal,
    Postgres, and a place for the services' logs."""

    admin: KafkaAccess
    database_url: str
    logs: Path
    service_access: dict[str, KafkaAccess] = field(default_factory=dict)

    def service_env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, **self.admin.env()}

    def processes(self, token: str) -> ServiceProcesses:
        names = [*COGS, *(f"{cog}-{REPLICA}" for cog in COGS)]
        return ServiceProcesses(
            env=self.service_env(),
            log_dir=self.logs,
            ports=_free_ports(HTTP_PORTS_FROM, names),
            kafka=self.service_access,
            operator_token=token,
        )


class BenchEnvironment:
    def __init__(self, repo: Path | None = None, *, external: bool = False) -> None:
        self.repo = repo or repo_root()
        self.external = external or os.environ.get(EXTERNAL_ENV) == "1"
        self.dir = self.repo / ".stack" / "bench"
        self.stack = LocalStack(
            self.repo, stack_dir=self.dir, kafka_libs=self.repo / ".stack" / "kafka" / "libs", preferred=PREFERRED
        )
        self.cluster: Cluster | None = None
        self._lock: TextIO | None = None

    def up(self, progress: Progress) -> Cluster:
        """The cluster to run on; a local one is fresh (whatever an interrupted run left is stopped and wiped)."""
        self._take_lock()
        if self.external:
            self.cluster = _external(self.dir / "logs")
            return self.cluster
        self.stack.down(progress=lambda _: None)
        if self.dir.exists():
            shutil.rmtree(self.dir)
        state = self.stack.up(progress=progress)
        access: dict[str, KafkaAccess] = {cog: state.kafka(service_username(cog)) for cog in COGS}
        self.cluster = Cluster(state.kafka(ADMIN), state.database_url, self.stack.logs, access)
        return self.cluster

    def token(self) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        return operator_token(self.dir)

    def close(self, progress: Progress) -> None:
        """Stop the local broker and Postgres and drop their data; the services' logs stay."""
        if self._lock is None:
            return
        if not self.external:
            self.stack.down(progress=progress)
            for data in (self.stack.kafka_dir / "data", self.stack.pg_data.parent):
                shutil.rmtree(data, ignore_errors=True)
        self._lock.close()
        self._lock = None

    def _take_lock(self) -> None:
        """One bench at a time: a second one would wipe the first one's stack."""
        path = self.dir.parent / "bench.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StackError("a bench is already running in this checkout; wait for it to finish") from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._lock = handle


def _external(logs: Path) -> Cluster:
    """KAFKA_* name the cluster's provisioning admin, who then also plays every service (as in the test suite)."""
    database = os.environ.get("DATABASE_URL")
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or not database:
        raise StackError("--external needs KAFKA_BOOTSTRAP_SERVERS (the admin's KAFKA_*) and DATABASE_URL")
    try:
        cluster = Cluster(KafkaAccess.from_env(), database, logs)
    except AccessError as error:
        raise StackError(str(error)) from None
    asyncio.run(_reachable(cluster))
    return cluster


async def _reachable(cluster: Cluster) -> None:
    if not await kafka_admin.broker_reachable(cluster.admin, timeout=10):
        raise StackError(f"Kafka at {cluster.admin.bootstrap} does not answer (or refuses the KAFKA_* credentials)")
    try:
        conn = await asyncpg.connect(cluster.database_url, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        raise StackError(f"Postgres at {masked(cluster.database_url)} cannot be reached: {error}") from None
    await conn.close()
