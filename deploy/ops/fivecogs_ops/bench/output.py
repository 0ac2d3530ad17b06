"""The report as one table (and the chain's, and the replicas' line) on stdout, or as one JSON object."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
from rich.table import Table

from fivecogs_ops.bench.results import ChainResult, StageResult
from fivecogs_ops.bench.runner import Report

DASH = "—"


def machine(repo: Path) -> dict[str, Any]:
    libs = repo / ".stack" / "kafka" / "libs"
    kafka = sorted(p.name.removeprefix("kafka-clients-").removesuffix(".jar") for p in libs.glob("kafka-clients-*.jar"))
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kafka": kafka[-1] if kafka else None,
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def ratio(result: StageResult, reference: StageResult | None) -> float | None:
    if result.rate is None or reference is None or reference.rate is None:
        return None
    return result.rate / reference.rate


def stage_json(result: StageResult, report: Report) -> dict[str, Any]:
    return {
        "stage": result.stage,
        "records": result.records,
        "processes": result.processes,
        "seconds": _round(result.seconds if result.verified else None, 2),
        "records_per_second": _round(result.rate, 1),
        "x_ceiling": _round(ratio(result, report.stage("ceiling")), 3),
        "x_naive": _round(ratio(result, report.stage("naive")), 2),
        "cpu_seconds_per_1k": _round(result.cpu_per_1k, 3),
        "peak_rss_mib": _round(result.peak_rss_mib, 1),
        "verified": result.verified,
        "problems": result.problems,
    }


def chain_json(chain: ChainResult) -> dict[str, Any]:
    highest = chain.highest_sustained
    half = _half_step(chain)
    return {
        "steps": [
            {
                "rate": s.rate,
                "chains": s.chains,
                "p50_ms": _round(s.p50_ms, 1),
                "p95_ms": _round(s.p95_ms, 1),
                "p99_ms": _round(s.p99_ms, 1),
                "sustained": s.sustained,
                "problems": s.problems,
            }
            for s in chain.steps
        ],
        "highest_sustained_rate": highest,
        "p99_ms_at_half": _round(half.p99_ms, 1) if half else None,
        "half_rate": half.rate if half else None,
        "problems": chain.problems,
    }


def to_json(report: Report, repo: Path) -> dict[str, Any]:
    rows = [*report.stages, *(r for r in (report.large, report.replicas) if r is not None)]
    return {
        "machine": machine(repo),
        "partitions": report.partitions,
        "stages": [stage_json(r, report) for r in rows],
        "chain": chain_json(report.chain) if report.chain else None,
        "replicas": _replicas(report),
        "verified": report.verified,
    }


def stage_table(report: Report) -> Table:
    table = Table(title="fivecogs bench")
    for name in ("stage", "records", "seconds", "records/s", "× ceiling", "× naive", "CPU-s/1k", "peak RSS MiB"):
        table.add_column(name, justify="left" if name == "stage" else "right")
    table.add_column("verified")
    for row in (stage_json(r, report) for r in [*report.stages, *(x for x in (report.large, report.replicas) if x)]):
        table.add_row(
            row["stage"],
            f"{row['records']:,}",
            _text(row["seconds"], "{:.1f}"),
            _text(row["records_per_second"], "{:,.0f}"),
            _text(row["x_ceiling"], "{:.2f}"),
            _text(row["x_naive"], "{:.1f}"),
            _text(row["cpu_seconds_per_1k"], "{:.2f}"),
            _text(row["peak_rss_mib"], "{:.0f}"),
            "yes" if row["verified"] else "NO: " + "; ".join(row["problems"]),
        )
    return table


def chain_table(chain: ChainResult) -> Table:
    table = Table(title="chain: last partner event → management's distribution.made")
    for name in ("chains/s", "chains", "p50 ms", "p95 ms", "p99 ms", "sustained"):
        table.add_column(name, justify="right")
    for step in chain.steps:
        table.add_row(
            str(step.rate),
            f"{step.chains:,}",
            _text(step.p50_ms, "{:.0f}"),
            _text(step.p95_ms, "{:.0f}"),
            _text(step.p99_ms, "{:.0f}"),
            "yes" if step.sustained else "no" + (f" ({'; '.join(step.problems)})" if step.problems else ""),
        )
    return table


def chain_line(chain: ChainResult) -> str:
    half = _half_step(chain)
    if chain.highest_sustained is None:
        return "chain: no rate was sustained" + (f" ({'; '.join(chain.problems)})" if chain.problems else "")
    at_half = f"p99 {half.p99_ms:.0f} ms at {half.rate}/s (half of it)" if half and half.p99_ms else "no step at half"
    return f"chain: highest sustained rate {chain.highest_sustained} chains/s; {at_half}"


def replicas_line(report: Report) -> str | None:
    found = _replicas(report)
    if found is None:
        return None
    two, one = found["two_processes_per_second"], found["one_process_per_second"]
    speed = f" (×{two / one:.2f})" if two and one else ""
    return (
        f"replicas: inputs with 2 processes in one group, {found['partitions']} partitions: "
        f"{_text(two, '{:,.0f}')} records/s vs {_text(one, '{:,.0f}')} with one{speed}"
    )


def _replicas(report: Report) -> dict[str, Any] | None:
    if report.replicas is None:
        return None
    one = report.stage("inputs")
    return {
        "partitions": report.partitions,
        "two_processes_per_second": _round(report.replicas.rate, 1),
        "one_process_per_second": _round(one.rate if one else None, 1),
        "verified": report.replicas.verified,
    }


def _half_step(chain: ChainResult) -> Any:
    """The step at half the highest sustained rate (or the nearest rate below half)."""
    highest = chain.highest_sustained
    if highest is None:
        return None
    below = [s for s in chain.steps if s.rate <= highest / 2 and s.p99_ms is not None]
    return max(below, key=lambda s: s.rate) if below else None


def _round(value: float | None, places: int) -> float | None:
    return None if value is None else round(value, places)


def _text(value: float | None, form: str) -> str:
    return DASH if value is None else form.format(value)
