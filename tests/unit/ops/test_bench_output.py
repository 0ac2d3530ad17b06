"""The bench's table and JSON: a figure only for a verified stage, ratios against the same run's ceiling and
naive, the chain's highest sustained rate and its p99 at half of it."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from fivecogs_ops.bench.fresh import Stage
from fivecogs_ops.bench.output import chain_line, replicas_line, stage_table, to_json
from fivecogs_ops.bench.results import ChainResult, ChainStep, StageResult
from fivecogs_ops.bench.runner import Report
from fivecogs_shared.contracts.topics import PARTNER_ID


def report() -> Report:
    return Report(
        partitions=3,
        stages=[
            StageResult("ceiling", 1000, seconds=0.5, cpu_seconds=0.2, processes=0),
            StageResult("naive", 1000, seconds=5.0, cpu_seconds=2.0, processes=0),
            StageResult("inputs", 1000, seconds=1.0, cpu_seconds=1.5, peak_rss_mib=80.0),
            StageResult("marketing", 1000, seconds=9.0, cpu_seconds=1.0, problems=["orders: 3 rows, expected 4"]),
        ],
        replicas=StageResult("replicas ×2", 1000, seconds=0.8, cpu_seconds=1.6, peak_rss_mib=81.0, processes=2),
    )


def test_a_verified_stage_has_its_figures_and_ratios() -> None:
    found = {row["stage"]: row for row in to_json(report(), Path("/nonexistent"))["stages"]}
    inputs = found["inputs"]
    assert inputs["records_per_second"] == 1000.0
    assert inputs["x_ceiling"] == 0.5
    assert inputs["x_naive"] == 5.0
    assert inputs["cpu_seconds_per_1k"] == 1.5
    assert inputs["peak_rss_mib"] == 80.0
    assert inputs["verified"] is True


def test_a_stage_that_failed_verification_has_no_figure_and_says_why() -> None:
    data = to_json(report(), Path("/nonexistent"))
    marketing = next(row for row in data["stages"] if row["stage"] == "marketing")
    assert marketing["records_per_second"] is None
    assert marketing["seconds"] is None
    assert marketing["x_ceiling"] is None
    assert marketing["problems"] == ["orders: 3 rows, expected 4"]
    assert data["verified"] is False
    console = Console(file=io.StringIO(), width=200)
    console.print(stage_table(report()))
    [line] = [line for line in console.file.getvalue().splitlines() if "marketing" in line]  # type: ignore[attr-defined]
    assert "NO: orders: 3 rows, expected 4" in line
    assert "1,000" in line
    assert "9.0" not in line


def test_the_replicas_line_compares_two_processes_with_one() -> None:
    line = replicas_line(report())
    assert line is not None
    assert "3 partitions" in line
    assert "1,250 records/s vs 1,000 with one (×1.25)" in line


def test_the_chain_reports_its_highest_sustained_rate_and_p99_at_half() -> None:
    chain = ChainResult(
        steps=[
            ChainStep(25, 500, 20.0, 40.0, 60.0, True),
            ChainStep(50, 1000, 30.0, 60.0, 90.0, True),
            ChainStep(100, 2000, 50.0, 150.0, 400.0, True),
            ChainStep(200, 4000, 900.0, 3000.0, 5000.0, False),
        ]
    )
    assert chain.highest_sustained == 100
    assert chain_line(chain) == "chain: highest sustained rate 100 chains/s; p99 90 ms at 50/s (half of it)"
    assert to_json(Report(chain=chain), Path("/nonexistent"))["chain"]["p99_ms_at_half"] == 90.0


def test_every_stage_gets_names_the_services_and_the_broker_accept() -> None:
    stage = Stage("communication", "inputs-large", "a1b2c3")
    assert PARTNER_ID.fullmatch(stage.partner)
    assert stage.group.startswith("fivecogs-communication")  # the only groups a service may join
    assert stage.schema == "bench_a1b2c3_inputs_large_communication"
    assert stage.env() == {
        "FIVECOGS_COMMUNICATION_CONSUMER_GROUP": stage.group,
        "FIVECOGS_COMMUNICATION_DB_SCHEMA": stage.schema,
    }
