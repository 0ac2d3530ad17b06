"""The run: the stages asked for, in an order that lets each be fresh, and the report they make."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from fivecogs_ops.bench import drain, fresh
from fivecogs_ops.bench.ceiling import ceiling
from fivecogs_ops.bench.chain import chain
from fivecogs_ops.bench.context import Bench
from fivecogs_ops.bench.environment import Cluster
from fivecogs_ops.bench.kafka import Probe
from fivecogs_ops.bench.naive import naive
from fivecogs_ops.bench.records import Writer
from fivecogs_ops.bench.results import ChainResult, StageResult
from fivecogs_ops.bench.webhooks import Receiver
from fivecogs_ops.bench.workloads import BUILDERS, communication
from fivecogs_shared.contracts import COGS

CHAIN, REPLICAS = "chain", "replicas"
STAGES: tuple[str, ...] = (*COGS, CHAIN, REPLICAS)


@dataclass(frozen=True)
class Plan:
    records: int = 10_000
    large: int = 100_000  # inputs' second backlog (0: none), to show memory does not grow with it
    only: tuple[str, ...] = STAGES
    rates: tuple[int, ...] = (25, 50, 100, 200, 400)
    step_seconds: float = 20.0

    @property
    def drains(self) -> list[str]:
        return [cog for cog in COGS if cog in self.only]


@dataclass
class Report:
    partitions: int = 0
    stages: list[StageResult] = field(default_factory=list)
    large: StageResult | None = None
    replicas: StageResult | None = None
    chain: ChainResult | None = None

    def stage(self, name: str) -> StageResult | None:
        return next((s for s in self.stages if s.stage == name), None)

    @property
    def verified(self) -> bool:
        found = [*self.stages, self.large, self.replicas]
        return all(s.verified for s in found if s is not None) and (self.chain is None or self.chain.verified)


async def run(plan: Plan, cluster: Cluster, processes_token: str, say: Callable[[str], None]) -> Report:
    report = Report()
    processes = cluster.processes(processes_token)
    async with Probe(cluster.admin) as probe:
        bench = Bench(cluster, processes, probe, secrets.token_hex(3), say)
        try:
            if plan.drains:
                await _reference_and_drains(bench, plan, report)
            if REPLICAS in plan.only:
                report.replicas = await _service(bench, "inputs", "replicas", plan.records, replicas=2)
            if CHAIN in plan.only:
                report.chain = await chain(bench, plan.rates, plan.step_seconds)
        finally:
            processes.stop_all(grace=12)
    return report


async def _reference_and_drains(bench: Bench, plan: Plan, report: Report) -> None:
    """The ceiling and naive take the inputs stage's records (inputs' drain then takes them too)."""
    stage = fresh.Stage("inputs", "inputs", bench.run)
    seeded = await drain.seed(bench, stage, BUILDERS["inputs"](Writer(stage.tag, stage.partner), plan.records))
    report.partitions = await bench.probe.partitions(stage.ingest)
    bench.say(f"topics have {report.partitions} partitions")
    report.stages += [await ceiling(bench, seeded), await naive(bench, seeded)]
    for cog in plan.drains:
        if cog == "inputs":
            report.stages.append(await drain.drain(bench, seeded))
        else:
            report.stages.append(await _service(bench, cog, cog, plan.records))
    if "inputs" in plan.drains and plan.large:
        report.large = await _service(bench, "inputs", "inputs-large", plan.large)


async def _service(bench: Bench, cog: str, name: str, records: int, replicas: int = 1) -> StageResult:
    stage = fresh.Stage(cog, name, bench.run)
    writer = Writer(stage.tag, stage.partner)
    if cog == "communication":  # some subscribers want their notices by webhook: a receiver answers them
        with Receiver() as receiver:
            workload = communication(writer, records, receiver.url)
            return await drain.drain(bench, await drain.seed(bench, stage, workload), replicas, receiver)
    workload = BUILDERS[cog](writer, records)
    return await drain.drain(bench, await drain.seed(bench, stage, workload), replicas)
