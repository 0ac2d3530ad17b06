"""The suite's result as tables (the summary issue 4 asks for, and one line per fault) and as JSON."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from fivecogs_ops.faults.runner import SuiteResult


def summary_table(result: SuiteResult) -> Table:
    title = f"fault suite: seed {result.seed}, arriving {result.workload.arrival}, {result.seconds / 60:.1f} min"
    table = Table("", "", title=title, show_header=False)
    for name, value in summary_rows(result):
        table.add_row(name, value)
    return table


def summary_rows(result: SuiteResult) -> list[tuple[str, str]]:
    workload, verdict = result.workload, result.verdict
    injected = [r for r in result.faults if r.injected]
    kinds = Counter(r.fault.kind for r in injected)
    poison = sum(workload.poison.values())
    rows = [
        (
            "faults injected",
            f"{len(injected)}/{len(result.planned)}: " + ", ".join(f"{k} ×{n}" for k, n in kinds.items()),
        ),
        ("events sent", f"{workload.sent:,} ({workload.events:,} events, each twice; {poison:,} poison twins)"),
        ("copies sent", _gaps(result)),
        ("duplicates absorbed", f"{result.duplicates_absorbed:,} (by the inboxes; a floor)"),
    ]
    if verdict is not None:
        distinct = verdict.dead_letters.seen
        rows += [
            ("events effective", f"{verdict.effective_actual:,} (model: {verdict.effective_expected:,})"),
            ("DLQ records", f"{verdict.dlq_records:,} ({distinct:,} records dead-lettered, all with their reason)"),
            ("feedback answers", f"{verdict.answers.seen:,} (model: {verdict.answers.expected:,} distinct)"),
            ("events held", _holds(result)),
            ("relayed again after a crash", f"{verdict.resent:,} ({len(verdict.order_violations)} out of order)"),
        ]
    rows.append(("mismatches", "—" if verdict is None else f"{verdict.mismatches}"))
    stops = result.stop_times()
    if stops:
        rows.append(("SIGTERM to exit", f"max {max(stops.values()):.1f}s over {len(stops)} stops"))
    return rows


def _holds(result: SuiteResult) -> str:
    assert result.verdict is not None
    holds = result.verdict.holds
    waited = result.held_wait_seconds
    after = f"; the last answered {waited:.0f}s after the last wave" if waited else ""
    return (
        f"{len(holds.held):,}: {len(holds.released):,} applied when what they waited for came (the longest after "
        f"{holds.longest_wait:.1f}s), {len(holds.refused):,} rejected, {len(holds.unresolved)} without an outcome"
        + after
    )


def faults_table(result: SuiteResult) -> Table:
    table = Table("#", "fault", "service", "at", "what happened", "ready", "recovered", title="time to recover")
    for r in result.faults:
        recovered = _seconds(r.recovered_seconds) if r.ok else f"[red]{r.error or 'not injected'}[/]"
        table.add_row(
            str(r.fault.number),
            r.fault.kind,
            r.target,
            _seconds(r.struck_at),
            r.detail,
            _seconds(r.ready_seconds),
            recovered,
        )
    return table


def result_json(result: SuiteResult) -> dict[str, Any]:
    workload = result.workload
    return {
        "passed": result.passed,
        "problems": result.problems(),
        "seed": result.seed,
        "tag": workload.scenario.tag,
        "mode": {"events": result.mode.events, "rate": result.mode.rate},
        "arrival": workload.arrival,
        "held_wait_seconds": result.held_wait_seconds,
        "seconds": round(result.seconds, 1),
        "events": workload.events,
        "sent": workload.sent,
        "poison": dict(workload.poison),
        "copy_gap_seconds": _gap_numbers(result),
        "duplicates_absorbed": result.duplicates_absorbed,
        "faults": [record.to_json() for record in result.faults],
        "waves": [wave.__dict__ for wave in result.waves],
        "crashes": result.crashes,
        "sigterm_seconds": {name: round(s, 2) for name, s in result.stop_times().items()},
        "verdict": result.verdict.to_json() if result.verdict else None,
    }


def _gap_numbers(result: SuiteResult) -> dict[str, float] | None:
    from fivecogs_ops.faults.runner import copy_gap_range

    found = copy_gap_range(result.copy_gaps)
    if found is None:
        return None
    return dict(zip(("min", "median", "max"), (round(s, 1) for s in found), strict=True))


def _gaps(result: SuiteResult) -> str:
    numbers = _gap_numbers(result)
    if numbers is None:
        return "—"
    if numbers["median"] >= 60:
        low, high, median = (numbers[k] / 60 for k in ("min", "max", "median"))
        return f"{low:.1f}–{high:.1f} min after the first (median {median:.1f})"
    return f"{numbers['min']:.0f}–{numbers['max']:.0f}s after the first (median {numbers['median']:.0f}s)"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}s"
