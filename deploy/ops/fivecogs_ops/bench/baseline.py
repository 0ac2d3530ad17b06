"""What the two baselines (ceiling, naive) share: a scratch schema and topic of their own, their run over the
stage's records, and the same verification (each record taken in once, two rows out for each)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from fivecogs_ops.bench.context import Bench
from fivecogs_ops.bench.drain import Seeded
from fivecogs_ops.bench.results import StageResult
from fivecogs_ops.bench.scratch import Scratch

Run = Callable[[Scratch, asyncpg.Connection, StageResult], Awaitable[None]]


async def run_baseline(bench: Bench, seeded: Seeded, name: str, run: Run) -> StageResult:
    scratch, records = Scratch(seeded.stage, name), seeded.workload.records
    result = StageResult(name, records, processes=0)
    conn = await bench.connect()
    try:
        await scratch.create(conn, bench.cluster.admin)
        before = await bench.probe.topic_ends([scratch.topic])
        await run(scratch, conn, result)
        result.problems = await scratch.verify(conn, bench.probe, before, records, 2 * records)
    finally:
        await conn.close()
    bench.say(f"{name}: {'verified' if result.verified else 'FAILED: ' + '; '.join(result.problems)}")
    return result
