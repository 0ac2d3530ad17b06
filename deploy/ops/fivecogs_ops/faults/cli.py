"""`fivecogs faults`: the fault suite on a stack of its own, with live progress and the final tables."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
from typing import Annotated

import typer
from rich.console import Console
from rich.status import Status

from fivecogs_ops.console import make_console
from fivecogs_ops.faults.environment import FaultEnvironment
from fivecogs_ops.faults.plan import FULL, SHORT, Mode
from fivecogs_ops.faults.progress import SuiteProgress
from fivecogs_ops.faults.recovery import FaultRecord
from fivecogs_ops.faults.show import faults_table, summary_table
from fivecogs_ops.simulate.arrival import ORDERED, Arrival
from fivecogs_ops.simulate.catchup import Lag
from fivecogs_ops.stack import StackError

EXIT_PASSED, EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 130
console = make_console(stderr=True)


class RichSuiteProgress(SuiteProgress):
    def __init__(self, console: Console) -> None:
        self.console = console
        self.status: Status | None = None
        self.published = 0
        self.wave_name = ""

    def stage(self, text: str) -> None:
        self._line(f"[green]•[/] {text}")

    def wave(self, name: str, records: int) -> None:
        self.wave_name = name
        self._status(f"{name}: publishing {records:,} records")

    def sent(self, records: int) -> None:
        self.published += records
        self._status(f"{self.wave_name}: {self.published:,} records published")

    def fault(self, record: FaultRecord) -> None:
        mark = "[yellow]⚡[/]" if record.error is None else "[red]✗[/]"
        self._line(f"  {mark} fault {record.fault.number}: {record.fault.kind} {record.target} {record.detail}")

    def lag(self, lag: Lag) -> None:
        behind = ", ".join(f"{g.removeprefix('fivecogs-')} {n}" for g, n in lag.by_group.items() if n)
        self._status(f"{self.wave_name}: catching up, {lag.total} behind {f'({behind})' if behind else ''}")

    def settled(self, name: str, publish_seconds: float, catch_up_seconds: float) -> None:
        self._line(f"[green]•[/] {name}: published in {publish_seconds:.1f}s, caught up {catch_up_seconds:.1f}s later")

    def _status(self, text: str) -> None:
        if self.status is None:
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def _line(self, text: str) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
        self.console.print(text)


def faults(
    events: Annotated[
        int | None,
        typer.Option(
            min=100, help="Partner events in the scenario, each sent twice (default 20000; 2000 with --short)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the scenario and of the faults' moments and targets.")] = 4,
    short: Annotated[bool, typer.Option("--short", help="The shortened run of `make test`: ~2,000 events.")] = False,
    arrival: Annotated[
        Arrival,
        typer.Option(
            "--arrival",
            help="ordered: the scenario step by step as written; shuffled: block by block in a seeded random "
            "order, records often before what they refer to (held until it comes).",
        ),
    ] = ORDERED,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Play a seeded scenario while killing services, restarting Kafka and Postgres, crashing the outbox relay,
    rewinding a group, forcing rebalances and sending poison and duplicates; then require the report to equal
    the model exactly.

    Runs on its own Kafka and Postgres under .stack/faults (other ports), stopped at the end, pass or fail.
    Exit 0: no mismatch and every fault injected and recovered from; 1: a mismatch or a failed check;
    2: the suite's stack could not start.
    """
    mode = SHORT if short else FULL
    if events:
        mode = dataclasses.replace(mode, events=events)
    raise typer.Exit(run(mode, seed, as_json, arrival))


def run(mode: Mode, seed: int, as_json: bool, arrival: Arrival = ORDERED) -> int:
    from fivecogs_ops.faults.runner import run_suite

    env = FaultEnvironment(arrival=arrival)
    progress = SuiteProgress() if as_json else RichSuiteProgress(console)
    signal.signal(signal.SIGTERM, _interrupt)  # like Ctrl-C: stop what the suite started, then exit
    try:
        result = asyncio.run(run_suite(env, mode, seed, progress, arrival))
    except StackError as error:
        console.print(f"[bold red]error:[/] {error}")
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return EXIT_INTERRUPTED
    finally:
        if isinstance(progress, RichSuiteProgress) and progress.status is not None:
            progress.status.stop()
        if env.owned:
            console.print("[dim]stopping the suite's services, Kafka and Postgres…[/]")
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not leave processes behind
            signal.signal(signum, signal.SIG_IGN)
        env.close(progress=lambda _: None)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        out = make_console()
        out.print(summary_table(result))
        out.print(faults_table(result))
        for problem in result.problems():
            out.print(f"[bold red]✗[/] {problem}")
        if result.passed:
            out.print("[bold green]✓ 0 mismatches: every fault injected and recovered from[/]")
    return EXIT_PASSED if result.passed else EXIT_FAILED


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    app.command("faults")(faults)
