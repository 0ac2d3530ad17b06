"""The simulation on a terminal: a progress bar per step with events/s, a live catch-up line, the report and
the verdict. Used by `fivecogs simulate` and `make run`."""

from __future__ import annotations

import json

from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar
from rich.status import Status
from rich.table import Table

from fivecogs_ops.console import make_console
from fivecogs_ops.report import report_tables
from fivecogs_ops.simulate.arrival import ORDERED, Arrival
from fivecogs_ops.simulate.catchup import CatchUpTimeout, Lag
from fivecogs_ops.simulate.compare import Holds, Tally
from fivecogs_ops.simulate.play import ManagementUnreachable
from fivecogs_ops.simulate.runner import Progress, SimulationResult, run_simulation
from fivecogs_shared.kafka_access import KafkaAccess

EXIT_MATCH, EXIT_MISMATCH, EXIT_UNREACHABLE = 0, 1, 2
SHOWN_DIFFERENCES = 40


class RichProgress(Progress):
    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar: Bar | None = None
        self.task: TaskID | None = None
        self.status: Status | None = None

    def stage(self, text: str) -> None:
        self.console.print(f"[green]•[/] {text}")

    def publishing(self, step: str, records: int) -> None:
        self.bar = Bar(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task(step, total=records, rate="")

    def sent(self, records: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, records)
            speed = self.bar.tasks[0].speed
            self.bar.update(self.task, rate=f"{speed:,.0f} events/s" if speed else "")

    def published(self, step: str, records: int, seconds: float) -> None:
        if self.bar is not None:
            self.bar.stop()
        rate = records / seconds if seconds else 0
        self.console.print(f"[green]•[/] {step}: {records} records published in {seconds:.2f}s ({rate:,.0f} events/s)")

    def lag(self, lag: Lag) -> None:
        behind = ", ".join(f"{g.removeprefix('fivecogs-')} {n}" for g, n in lag.by_group.items() if n)
        text = f"  catching up: {lag.total} behind" + (f" ({behind})" if behind else "")
        text += f" · quiet for {lag.quiet_for:.1f}s"
        if self.status is None:
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def caught_up(self, seconds: float) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
        self.console.print(f"  [dim]the chain caught up in {seconds:.1f}s[/]")

    def holding(self, holds: Holds) -> None:
        latest = holds.latest_until
        until = f", the last until {latest.astimezone():%H:%M:%S}" if latest else ""
        text = f"  {len(holds.waiting)} events still held{until}"
        if self.status is None:
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)


async def simulate_and_show(
    console: Console,
    *,
    kafka: KafkaAccess,
    management_url: str,
    token: str,
    enterprises: int,
    seed: int,
    wait: bool = True,
    timeout: float = 300.0,
    as_json: bool = False,
    database_url: str | None = None,
    arrival: Arrival = ORDERED,
) -> int:
    """Run the simulation and print it; the exit code: 0 match, 1 mismatch, 2 chain unreachable or stuck."""
    progress = Progress() if as_json else RichProgress(console)
    try:
        result = await run_simulation(
            kafka,
            management_url,
            enterprises,
            seed,
            token=token,
            wait=wait,
            timeout=timeout,
            progress=progress,
            database_url=database_url,
            arrival=arrival,
        )
    except (KafkaError, OSError, ManagementUnreachable, CatchUpTimeout, TimeoutError) as error:
        if isinstance(progress, RichProgress) and progress.status is not None:
            progress.status.stop()
        console.print(f"[bold red]error:[/] {error or type(error).__name__}")
        return EXIT_UNREACHABLE
    if isinstance(progress, RichProgress) and progress.status is not None:
        progress.status.stop()
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        show_result(make_console(), result)
    if not result.verified:
        return EXIT_MATCH
    return EXIT_MATCH if result.matches else EXIT_MISMATCH


def show_result(console: Console, result: SimulationResult) -> None:
    scenario = result.scenario
    records, enterprises = len(scenario), scenario.enterprises
    console.print(
        f"\nscenario seed {scenario.seed}, tag {scenario.tag}: {records} records, {enterprises} enterprises, "
        f"arriving {result.arrival}"
    )
    if not result.verified:
        console.print("[yellow]published without waiting: nothing verified (steps raced each other)[/]")
        return
    assert result.actual is not None
    report = result.actual.to_json()
    for view, by in (("provinces", "province"), ("regions", "region")):
        for table in report_tables(report[view], by, f"report by {by} (after the run)", console.width):
            console.print(table)
    _show_tally(console, "answers (accepted, rejected, orders)", result.answers)
    _show_tally(console, "dead letters", result.dead_letters)
    _show_holds(console, result.holds, result.held_wait_seconds)
    if result.interference():
        console.print(f"[yellow]! while the scenario played, {result.interference()}: differences may be theirs[/]")
    if result.differences:
        _show_differences(console, result)
    elif result.matches:
        console.print("[bold green]✓ report matches the scenario's expected figures[/]")
    else:
        console.print("[bold red]✗ the report matches, but not every answer or dead letter does[/]")


def _show_tally(console: Console, what: str, tally: Tally | None) -> None:
    if tally is None:
        return
    mark = "[green]✓[/]" if tally.matches else "[red]✗[/]"
    console.print(f"{mark} {what}: expected {tally.expected}, seen {tally.seen}")
    for line in tally.missing[:20]:
        console.print(f"    [red]missing[/]    {line}")
    for line in tally.unexpected[:20]:
        console.print(f"    [red]unexpected[/] {line}")
    if tally.theirs:
        console.print(f"    [yellow]{len(tally.theirs)} more about records other consumer groups read too[/]")


def _show_holds(console: Console, holds: Holds | None, waited: float | None) -> None:
    if holds is None:
        return
    mark = "[red]✗[/]" if holds.unresolved else "[green]✓[/]"
    console.print(
        f"{mark} held: {len(holds.held)} events, {len(holds.released)} applied when what they waited for came "
        f"(the longest after {holds.longest_wait:.1f}s), {len(holds.refused)} rejected"
        + (f"; the last answered {waited:.0f}s after the last wave" if waited else "")
    )
    for line in holds.unresolved[:20]:
        console.print(f"    [red]no outcome[/] {line}")


def _show_differences(console: Console, result: SimulationResult) -> None:
    table = Table("report", "row", "field", "expected", "actual", title="[bold red]✗ the report differs from the model")
    for d in result.differences[:SHOWN_DIFFERENCES]:
        table.add_row(d.table, d.name, d.field, d.expected, d.actual)
    console.print(table)
    if len(result.differences) > SHOWN_DIFFERENCES:
        console.print(f"  … and {len(result.differences) - SHOWN_DIFFERENCES} more (see --json)")
