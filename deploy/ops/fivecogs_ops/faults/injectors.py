"""Breaking the chain, one fault at a time, and starting again what was broken.

`inject` does the fault's immediate part while the publisher waits (a kill, a restart of the broker); what
plays out over time (the relay's crash, the second instance's life, every recovery) runs in the background,
and `settle` waits for it. One lock per service keeps two faults from handling the same process at once.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable

from fivecogs_ops.faults import plan
from fivecogs_ops.faults.environment import SPARE, FaultEnvironment
from fivecogs_ops.faults.probe import (
    group_members,
    is_ready,
    outbox_rows,
    until_in_flight,
    until_leaders,
)
from fivecogs_ops.faults.recovery import FaultRecord, RecoveryWatch
from fivecogs_ops.simulate.catchup import consumed_topics
from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts import COGS
from fivecogs_shared.outbox import CHAOS_EXIT_AFTER_PUBLISH, CHAOS_EXIT_CODE

BROKER_DOWN_SECONDS = 3.0  # how long Kafka stays stopped
POSTGRES_DOWN_SECONDS = 2.0
RELAY_CRASH_TIMEOUT = 90.0  # for the chaos process to publish a batch and die
SPARE_LIFE_SECONDS = 4.0  # how long the second instance works before it is killed
IN_FLIGHT_WAIT = 5.0  # how long a kill waits for a batch in flight before it strikes anyway


class Injector:
    def __init__(self, env: FaultEnvironment, started: float, busiest: Callable[[], str]) -> None:
        self.env, self.started, self.busiest = env, started, busiest
        self.records: list[FaultRecord] = []
        self.crashes: list[str] = []  # services found dead that no fault had killed
        self._locks: dict[str, asyncio.Lock] = {cog: asyncio.Lock() for cog in COGS}
        self._tasks: set[asyncio.Task[None]] = set()

    async def inject(self, fault: plan.Fault) -> FaultRecord:
        target = fault.target or self.busiest()
        record = FaultRecord(fault, target)
        self.records.append(record)
        actions: dict[str, Callable[[FaultRecord], Awaitable[None]]] = {
            plan.KILL: self._kill,
            plan.BROKER: self._broker,
            plan.POSTGRES: self._postgres,
            plan.RELAY: self._relay,
            plan.REWIND: self._rewind,
            plan.REBALANCE: self._rebalance,
        }
        try:
            await actions[fault.kind](record)
        except Exception as error:  # a fault that could not be injected is a failed check, not a crash
            record.error = f"could not inject: {error!r}"
        return record

    async def settle(self) -> None:
        """Wait for every fault still playing out, then restart any service that died on its own."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))
        await self.revive()

    async def revive(self) -> None:
        processes = self.env.processes()
        for cog in COGS:
            if self._locks[cog].locked():
                continue
            process = processes.processes.get(cog)
            if process is not None and process.poll() is not None:
                self.crashes.append(f"{cog} exited with code {process.returncode} (restarted)")
                processes.start(cog)

    # -- the faults ------------------------------------------------------------------------------------------
    # Faults on one service play out in the background (publishing goes on, so the service stays busy), holding
    # that service's lock; each returns when it struck, then its recovery is timed.
    async def _kill(self, record: FaultRecord) -> None:
        self._on_service(record, self._kill_in_flight)

    async def _kill_in_flight(self, record: FaultRecord) -> float:
        """SIGKILL, preferably while a batch is half-applied: its transaction must roll back and its offsets
        stay uncommitted, so that the restarted service applies it exactly once."""
        mid_batch = await until_in_flight(self.env.database_url, record.target, IN_FLIGHT_WAIT)
        code = await asyncio.to_thread(self.env.processes().stop, record.target, kill=True)
        since = self._strike(record)
        record.injected = code == -9
        moment = "mid-transaction" if mid_batch else "between batches"
        record.detail = f"SIGKILL {moment}" if record.injected else f"the process had already exited ({code})"
        self.env.processes().start(record.target)
        return since

    async def _broker(self, record: FaultRecord) -> None:
        """Inline: the publisher (a partner) waits while Kafka is away."""
        since = self._strike(record)
        await asyncio.to_thread(self.env.stack.stop_kafka)
        await asyncio.sleep(BROKER_DOWN_SECONDS)
        await asyncio.to_thread(self.env.stack.start_kafka, lambda _: None)
        await until_leaders(self.env.kafka)  # the partner resumes once Kafka takes records
        record.injected = True
        record.detail = f"Kafka stopped for {time.monotonic() - since:.1f}s"
        self._watch(record, COGS, since)

    async def _postgres(self, record: FaultRecord) -> None:
        since = self._strike(record)
        await asyncio.to_thread(self.env.stack.stop_postgres, "immediate")
        await asyncio.sleep(POSTGRES_DOWN_SECONDS)
        await asyncio.to_thread(self.env.stack.start_postgres, lambda _: None)
        record.injected = True
        record.detail = f"pg_ctl stop -m immediate; down {time.monotonic() - since:.1f}s"
        self._watch(record, COGS, since)

    async def _relay(self, record: FaultRecord) -> None:
        self._on_service(record, self._relay_crash)

    async def _relay_crash(self, record: FaultRecord) -> float:
        """Restart the service with the relay's chaos hook: it dies right after Kafka acked its first batch."""
        record.stop_seconds = await self._graceful_stop(record.target)
        self.env.processes().start(record.target, extra_env={CHAOS_EXIT_AFTER_PUBLISH: "1"})
        code = await self._exit_code(record.target, RELAY_CRASH_TIMEOUT)
        since = self._strike(record)
        record.injected = code == CHAOS_EXIT_CODE
        record.detail = "exited between Kafka's ack and the DELETE" if record.injected else f"exit code {code}"
        if code is None:
            record.error = f"the relay published nothing in {RELAY_CRASH_TIMEOUT:.0f}s"
            await asyncio.to_thread(self.env.processes().stop, record.target)
        self.env.processes().start(record.target)
        return since

    async def _rewind(self, record: FaultRecord) -> None:
        self._on_service(record, self._rewound)

    async def _rewound(self, record: FaultRecord) -> float:
        """SIGTERM (which must flush the outbox and leave the group), offsets to 0, start: all read again."""
        since = self._strike(record)
        record.stop_seconds = await self._graceful_stop(record.target)
        left = await outbox_rows(self.env.database_url, record.target)
        await self._until_group_empty(record.target)  # else Kafka would wait for the session to expire
        group, kafka = f"fivecogs-{record.target}", self.env.kafka
        async with kafka_admin.admin_client(kafka) as admin:
            topics = consumed_topics(record.target, await kafka_admin.list_topics(admin))
            partitions = await kafka_admin.partitions_of(admin, topics)
        committed = await kafka_admin.committed_offsets(kafka, group)
        await kafka_admin.reset_group_offsets(kafka, group, dict.fromkeys(partitions, 0))
        record.injected = True
        record.detail = (
            f"SIGTERM: exit {record.stop_seconds:.1f}s, {left} outbox rows left, group left "
            f"{time.monotonic() - since:.1f}s after; {sum(committed.values())} records to read again"
        )
        self.env.processes().start(record.target)
        return since

    async def _rebalance(self, record: FaultRecord) -> None:
        self._on_service(record, self._spare_life, sole_member=True)

    async def _spare_life(self, record: FaultRecord) -> float:
        """A second instance joins the group, works a little, and is killed: two rebalances under load."""
        processes = self.env.processes()
        processes.start(record.target, name=SPARE)
        joined = time.monotonic()
        while not await is_ready(processes.url(SPARE, "/readyz")):  # ready: it owns partitions
            if processes.processes[SPARE].poll() is not None or time.monotonic() - joined > 90:
                record.error = "the second instance never got partitions"
                break
            await asyncio.sleep(0.25)
        record.detail = f"second instance owned partitions after {time.monotonic() - joined:.1f}s, then SIGKILL"
        await asyncio.sleep(SPARE_LIFE_SECONDS)
        await asyncio.to_thread(processes.stop, SPARE, kill=True)
        record.injected = record.error is None
        return self._strike(record)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _strike(self, record: FaultRecord) -> float:
        now = time.monotonic()
        record.struck_at = now - self.started
        return now

    def _watch(self, record: FaultRecord, cogs: tuple[str, ...] | list[str], since: float) -> None:
        self._background(record, RecoveryWatch(self.env.kafka, self._ready_url, list(cogs), since).run(record))

    def _on_service(
        self, record: FaultRecord, act: Callable[[FaultRecord], Awaitable[float]], *, sole_member: bool = False
    ) -> None:
        """Play `act` in the background holding the service's lock; whatever happens, the service runs again
        afterwards; then time its recovery from the moment `act` says it struck."""

        async def play() -> None:
            async with self._locks[record.target]:
                try:
                    since = await act(record)
                finally:
                    self._ensure_running(record.target)
            watch = RecoveryWatch(self.env.kafka, self._ready_url, [record.target], since, sole_member=sole_member)
            await watch.run(record)

        self._background(record, play())

    def _background(self, record: FaultRecord, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception as error:  # the fault failed, not the suite: say so in its row
                record.error = record.error or f"{type(error).__name__}: {error}"

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ensure_running(self, cog: str) -> None:
        process = self.env.processes().processes.get(cog)
        if process is None or process.poll() is not None:
            self.env.processes().start(cog)

    def _ready_url(self, cog: str) -> str:
        return self.env.processes().url(cog, "/readyz")

    async def _graceful_stop(self, cog: str) -> float:
        started = time.monotonic()
        await asyncio.to_thread(self.env.processes().stop, cog, grace=30)
        return time.monotonic() - started

    async def _exit_code(self, cog: str, timeout: float) -> int | None:
        process: subprocess.Popen[bytes] = self.env.processes().processes[cog]
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.1)
        return process.returncode

    async def _until_group_empty(self, cog: str, timeout: float = 30.0) -> None:
        """Kafka refuses to move the offsets of a group with members: the stopped service must have left it."""
        deadline = time.monotonic() + timeout
        while await group_members(self.env.kafka, cog) != 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fivecogs-{cog} still has members {timeout:.0f}s after its service stopped")
            await asyncio.sleep(0.5)
