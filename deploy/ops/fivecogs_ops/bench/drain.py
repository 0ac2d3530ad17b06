"""A service draining a backlog published before it starts: timed from its /readyz answering until its group's
lag is 0 on every partition and its outbox (and held events) are empty; then every effect verified."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from fivecogs_ops.bench import fresh, verify
from fivecogs_ops.bench.context import Bench
from fivecogs_ops.bench.environment import REPLICA
from fivecogs_ops.bench.kafka import publish
from fivecogs_ops.bench.measure import ProcessMeter
from fivecogs_ops.bench.records import Record
from fivecogs_ops.bench.results import StageResult
from fivecogs_ops.bench.webhooks import Receiver
from fivecogs_ops.bench.workloads import Workload
from fivecogs_shared.kafka_access import KafkaAccess

POLL_SECONDS = 0.2
REPORT_SECONDS = 2.0
READY_SECONDS = 180.0
MIN_RATE = 20.0  # records/s below which a drain is given up as stuck (and reported so)


class Seeded:
    """A stage whose partner, group and backlog are in place: what the ceiling, naive and the service share."""

    def __init__(self, stage: fresh.Stage, workload: Workload, start: verify.Before) -> None:
        self.stage, self.workload, self.start = stage, workload, start


async def seed(bench: Bench, stage: fresh.Stage, workload: Workload) -> Seeded:
    partner = await fresh.prepare(bench.cluster.admin, stage)
    start = await verify.before(bench.probe, stage)
    if workload.prelude:
        await _publish(bench, stage, workload.prelude, partner.access, "prelude")
        names = _names(stage.cog, 1)
        await _start(bench, stage, names)
        await _wait_drained(bench, stage, len(workload.prelude))
        _stop(bench, names)
    await _publish(bench, stage, workload.backlog, partner.access, "backlog")
    return Seeded(stage, workload, start)


async def drain(bench: Bench, seeded: Seeded, replicas: int = 1, receiver: Receiver | None = None) -> StageResult:
    """`receiver`: where communication's webhook subscribers are, to check their notices reached it."""
    stage, workload = seeded.stage, seeded.workload
    label = stage.name if replicas == 1 else f"{stage.name} ×{replicas}"
    result = StageResult(label, workload.records, processes=replicas)
    names = _names(stage.cog, replicas)
    try:
        meters, began = await _start_timed(bench, stage, names, workload.records)
        finished = await _wait_drained(bench, stage, workload.records)
        result.seconds = time.monotonic() - began
        figures = [meter.stop(since=began) for meter in meters]
        result.cpu_seconds = sum(cpu for cpu, _ in figures)
        result.peak_rss_mib = max(rss for _, rss in figures)
        if not finished:
            result.problems.append(f"not drained after {result.seconds:.0f}s")
        conn = await bench.connect()
        try:
            result.problems += await verify.verify(conn, bench.probe, stage, workload, seeded.start)
            if workload.webhooks and receiver is not None:
                counted = receiver  # the receiver's count, read as it grows
                result.problems += await verify.webhooks(
                    conn, stage.schema, workload.webhooks, lambda: counted.received, bench.say
                )
        finally:
            await conn.close()
    except (RuntimeError, TimeoutError) as error:  # a service that exits or never gets ready: the row says so
        result.problems.append(str(error))
    finally:
        _stop(bench, names)
    bench.say(f"{label}: {'verified' if result.verified else 'FAILED: ' + '; '.join(result.problems)}")
    return result


async def _publish(
    bench: Bench, stage: fresh.Stage, records: Sequence[Record], partner: KafkaAccess, what: str
) -> None:
    """Upstream facts first (as the upstream cog, with the admin's access), then the partner's own events."""
    facts = [r for r in records if r.topic != stage.ingest]
    own = [r for r in records if r.topic == stage.ingest]
    total, began = len(records), time.monotonic()
    bench.say(f"{stage.name}: publishing the {what}, {total:,} records")

    def sent(done: int, base: int = 0) -> None:
        if (base + done) % 10_000 < 2000 or base + done == total:
            bench.say(f"{stage.name}: {base + done:,}/{total:,} records published")

    await publish(bench.cluster.admin, facts, sent)
    await publish(partner, own, lambda done: sent(done, len(facts)))
    bench.say(f"{stage.name}: {what} published in {time.monotonic() - began:.1f}s")


def _names(cog: str, replicas: int) -> list[str]:
    return [cog, *(f"{cog}-{REPLICA}" for _ in range(replicas - 1))][:replicas]


async def _start(bench: Bench, stage: fresh.Stage, names: list[str]) -> None:
    for name in names:
        bench.processes.start(stage.cog, name=name, extra_env=stage.env())
    await asyncio.to_thread(bench.processes.wait_ready, names, READY_SECONDS)


async def _start_timed(
    bench: Bench, stage: fresh.Stage, names: list[str], backlog: int
) -> tuple[list[ProcessMeter], float]:
    """Start the processes with a meter each; returns the meters and the moment the drain began: their
    readiness or, when they committed records before /readyz answered, the last moment the whole backlog was
    still seen untouched (never later than the work began)."""
    partitions = await fresh.subscribed(bench.cluster.admin, stage.cog)
    for name in names:
        bench.processes.start(stage.cog, name=name, extra_env=stage.env())
    meters = [ProcessMeter(bench.processes.processes[name].pid) for name in names]
    ready = asyncio.ensure_future(asyncio.to_thread(bench.processes.wait_ready, names, READY_SECONDS))
    untouched, touched = time.monotonic(), False
    while not ready.done():
        if not touched and await bench.probe.lag(stage.group, partitions) >= backlog:
            untouched = time.monotonic()
        else:
            touched = True
        await asyncio.wait({ready}, timeout=POLL_SECONDS / 2)
    ready.result()  # a process that exited or never got ready raises here
    return meters, untouched if touched else time.monotonic()


def _stop(bench: Bench, names: list[str]) -> None:
    for name in names:
        bench.processes.stop(name)


async def _wait_drained(bench: Bench, stage: fresh.Stage, records: int) -> bool:
    """True once lag, outbox and held events are all 0; False when the drain is slower than MIN_RATE."""
    partitions = await fresh.subscribed(bench.cluster.admin, stage.cog)
    deadline = time.monotonic() + 60 + records / MIN_RATE
    reported = 0.0
    conn = await bench.connect()
    try:
        while time.monotonic() < deadline:
            lag = await bench.probe.lag(stage.group, partitions)
            left = await verify.backlog_left(conn, stage.schema) if not lag else 0
            if lag == 0 and left == 0:
                return True
            if time.monotonic() - reported > REPORT_SECONDS:
                reported = time.monotonic()
                bench.say(f"{stage.name}: {lag:,} records behind" + (f", {left:,} in outbox/held" if left else ""))
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await conn.close()
    return False
