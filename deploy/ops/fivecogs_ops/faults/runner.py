"""`run_suite`: the seeded scenario played on the suite's own stack while faults strike, then the verdict.

Order of play: build the workload and its model (before anything starts, so a bad seed fails fast), bring up
Kafka, Postgres and the five services, then wave by wave publish at a steady rate with the faults striking at
their positions, wait for the faults to play out and for the chain to catch up, wait for every event still
held to be answered (applied, or rejected when its wait expires), and finally compare.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fivecogs_ops.faults.counters import DuplicateCounter
from fivecogs_ops.faults.environment import FaultEnvironment
from fivecogs_ops.faults.injectors import Injector
from fivecogs_ops.faults.plan import Fault, Mode, plan_faults
from fivecogs_ops.faults.player import Player
from fivecogs_ops.faults.probe import until_leaders
from fivecogs_ops.faults.progress import SuiteProgress
from fivecogs_ops.faults.recovery import FaultRecord
from fivecogs_ops.faults.verify import Verdict, judge
from fivecogs_ops.faults.workload import Workload, build_workload
from fivecogs_ops.simulate.arrival import ORDERED, Arrival
from fivecogs_ops.simulate.catchup import LagWatcher
from fivecogs_ops.simulate.collector import Collector, Seen
from fivecogs_ops.simulate.holds import await_outcomes
from fivecogs_ops.simulate.model import ChainModel
from fivecogs_ops.simulate.play import Publisher, answer_topics, chain_topics, fetch_report, provision
from fivecogs_ops.stack import StackError
from fivecogs_shared.contracts import COGS, events_topic
from fivecogs_shared.kafka_access import KafkaAccess

SHUTDOWN_LIMIT = 10.0  # seconds from SIGTERM to exit (issue 4)


def recorded_topics(workload: Workload) -> list[str]:
    """Everything the chain writes: its events, feedback and dead letters, read from the first record (the
    suite's stack is fresh, so that is exactly this run)."""
    return [*answer_topics(workload.scenario.partners), *(events_topic(cog) for cog in COGS)]


@dataclass
class WaveTiming:
    name: str
    records: int
    publish_seconds: float
    catch_up_seconds: float


@dataclass
class SuiteResult:
    mode: Mode
    seed: int
    workload: Workload
    planned: list[Fault]
    faults: list[FaultRecord] = field(default_factory=list)
    waves: list[WaveTiming] = field(default_factory=list)
    verdict: Verdict | None = None
    duplicates_absorbed: int = 0
    copy_gaps: list[float] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    final_stops: dict[str, float] = field(default_factory=dict)  # SIGTERM to exit, at the end
    held_wait_seconds: float | None = None  # after the last wave, for the events still held to be answered
    recorded: list[Seen] = field(default_factory=list)  # what the chain wrote (not part of the JSON)
    seconds: float = 0.0
    error: str | None = None

    def problems(self) -> list[str]:
        """Everything that makes the run fail, in words; empty when it passed."""
        found = [self.error] if self.error else []
        if self.verdict is None:
            return found or ["no verdict"]
        if self.verdict.mismatches:
            found.append(f"{self.verdict.mismatches} mismatches")
        found += [f"fault {r.fault.number} ({r.fault.kind} {r.target}): {_failure(r)}" for r in self.faults if not r.ok]
        found += [f"fault {f.number} ({f.kind}) never struck" for f in self.planned[len(self.faults) :]]
        found += [f"crash: {crash}" for crash in self.crashes]
        slow = {name: s for name, s in self.stop_times().items() if s > SHUTDOWN_LIMIT}
        found += [f"{name} took {s:.1f}s to stop on SIGTERM" for name, s in slow.items()]
        return found

    def stop_times(self) -> dict[str, float]:
        times = {f"{r.target} (fault {r.fault.number})": r.stop_seconds for r in self.faults if r.stop_seconds}
        return {**times, **{f"{cog} (end)": s for cog, s in self.final_stops.items()}}

    @property
    def passed(self) -> bool:
        return not self.problems()

    def to_json(self) -> dict[str, Any]:
        from fivecogs_ops.faults.show import result_json

        return result_json(self)


async def run_suite(
    env: FaultEnvironment, mode: Mode, seed: int, progress: SuiteProgress, arrival: Arrival = ORDERED
) -> SuiteResult:
    with _quiet_aiokafka():
        return await _run_suite(env, mode, seed, progress, arrival)


@contextlib.contextmanager
def _quiet_aiokafka() -> Iterator[None]:
    """aiokafka logs every refused connection as an error; while the broker is down on purpose, that is noise."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _run_suite(
    env: FaultEnvironment, mode: Mode, seed: int, progress: SuiteProgress, arrival: Arrival
) -> SuiteResult:
    started = time.monotonic()
    progress.stage(f"building a scenario of {mode.events:,} events (seed {seed}, arriving {arrival})")
    workload = await asyncio.to_thread(
        build_workload, mode.events, seed, mode.copy_delay_events, arrival=arrival, block=mode.block
    )
    model = ChainModel()  # a fresh stack holds nothing else: the model starts empty too
    outcomes = await asyncio.to_thread(model.apply_all, list(workload.records()))
    result = SuiteResult(mode, seed, workload, plan_faults(mode, workload.sent, seed))
    try:
        accesses = await _start(env, workload, progress)
        management, token = env.processes().url("management"), env.processes().operator_token
        before = await fetch_report(management, token)
        await _play(env, mode, result, accesses, progress, started)
        progress.stage("comparing the report, every answer and every dead letter with the model")
        actual = await fetch_report(management, token)
        expected = before.plus(model.report())
        verdict = await judge(workload.scenario, outcomes, expected, actual, result.recorded, env.database_url)
        result.verdict = verdict
        result.final_stops = await _graceful_stops(env)
    except StackError:
        raise  # the suite could not run at all: not a verdict on the chain
    except Exception as error:
        result.error = f"{type(error).__name__}: {error}"
    result.seconds = time.monotonic() - started
    return result


async def _start(env: FaultEnvironment, workload: Workload, progress: SuiteProgress) -> dict[str, KafkaAccess]:
    """The stack and the five services, then the workload's partners provisioned: their credentials."""
    progress.stage("starting the suite's own Kafka and Postgres (.stack/faults)")
    await asyncio.to_thread(env.up, progress.stage)
    processes = env.processes()
    for cog in COGS:
        processes.start(cog)
    await asyncio.to_thread(processes.wait_ready, COGS, 120)
    progress.stage(f"five services ready; management at {processes.url('management')}")
    cast = workload.scenario.partners
    progress.stage(f"provisioning {len(cast)} partners (credentials, topics, ACLs)")
    accesses = await provision(env.kafka, cast)
    await until_leaders(env.kafka, [*answer_topics(cast), *chain_topics(cast)])
    return accesses


async def _play(
    env: FaultEnvironment,
    mode: Mode,
    result: SuiteResult,
    accesses: dict[str, KafkaAccess],
    progress: SuiteProgress,
    t0: float,
) -> None:
    stream = [published for wave in result.workload.waves for published in wave.records]
    cast = result.workload.scenario.partners
    watched_topics = [*answer_topics(cast), *chain_topics(cast)]
    async with (
        Collector(env.kafka, recorded_topics(result.workload), from_beginning=True) as recorder,
        Publisher(accesses) as publisher,
    ):
        injector = Injector(env, t0, busiest=lambda: player.busiest())
        player = Player(publisher, injector, result.planned, stream, progress)
        counter = DuplicateCounter(lambda: _metrics_urls(env))
        counting = asyncio.create_task(counter.run())
        try:
            for wave in result.workload.waves:
                progress.wave(wave.name, len(wave.records))
                publish = await player.play(wave, mode.rate)
                await injector.settle()
                async with LagWatcher(env.kafka, database_url=env.database_url, topics=watched_topics) as watcher:
                    caught_up = await watcher.wait(timeout=mode.catch_up_timeout, quiet=2.0, progress=progress.lag)
                progress.settled(wave.name, publish, caught_up)
                result.waves.append(WaveTiming(wave.name, len(wave.records), publish, caught_up))
            progress.stage("waiting for the events still held to be applied, or their wait to expire")
            result.held_wait_seconds = await await_outcomes(recorder, result.workload.scenario.tag)
            async with LagWatcher(env.kafka, database_url=env.database_url, topics=watched_topics) as watcher:
                await watcher.wait(timeout=mode.catch_up_timeout, quiet=2.0, progress=progress.lag)
            await recorder.read_to_end()
            await counter.scrape_now()
        finally:
            counting.cancel()
            result.faults, result.crashes = injector.records, injector.crashes
            result.duplicates_absorbed, result.copy_gaps = counter.total, player.copy_gaps
            result.recorded = recorder.records


def _metrics_urls(env: FaultEnvironment) -> dict[str, tuple[int, str]]:
    processes = env.processes()
    return {
        name: (process.pid, processes.url(name, "/metrics"))
        for name, process in list(processes.processes.items())
        if process.poll() is None
    }


async def _graceful_stops(env: FaultEnvironment) -> dict[str, float]:
    """SIGTERM to every service at once; seconds until each exited."""
    processes = {name: p for name, p in env.processes().processes.items() if p.poll() is None}
    started = time.monotonic()
    for process in processes.values():
        process.send_signal(signal.SIGTERM)
    stopped: dict[str, float] = {}
    while len(stopped) < len(processes) and time.monotonic() - started < 30:
        for name, process in processes.items():
            if name not in stopped and process.poll() is not None:
                stopped[name] = time.monotonic() - started
        await asyncio.sleep(0.05)
    late = {name: time.monotonic() - started for name in processes if name not in stopped}
    return {**stopped, **late}


def _failure(record: FaultRecord) -> str:
    if record.error:
        return record.error
    return "not injected" if not record.injected else "no recovery measured"


def copy_gap_range(gaps: list[float]) -> tuple[float, float, float] | None:
    """(shortest, median, longest) seconds between an event's two copies."""
    if not gaps:
        return None
    return min(gaps), statistics.median(gaps), max(gaps)
