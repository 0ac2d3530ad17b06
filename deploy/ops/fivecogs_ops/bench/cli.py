"""`fivecogs bench` (`make bench`): the throughput instrument, on a stack of its own (or the env's cluster)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from typing import Annotated

import typer
from rich.markup import escape

from fivecogs_ops.bench.environment import BenchEnvironment
from fivecogs_ops.bench.output import chain_line, chain_table, replicas_line, stage_table, to_json
from fivecogs_ops.bench.runner import STAGES, Plan, Report, run
from fivecogs_ops.choices import unknown
from fivecogs_ops.console import make_console
from fivecogs_ops.stack import StackError

EXIT_VERIFIED, EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 3, 130
console = make_console(stderr=True)


def stages(value: str | None) -> str | None:
    for name in _split(value or ""):
        if name not in STAGES:
            raise typer.BadParameter(unknown("stage", name, STAGES))
    return value


def rates(value: str) -> str:
    try:
        found = [int(part) for part in _split(value)]
    except ValueError:
        raise typer.BadParameter(f"{value!r}: chains per second as whole numbers, e.g. 25,50,100") from None
    if not found or min(found) < 1:
        raise typer.BadParameter("name at least one rate, each 1 or more")
    return value


def bench(
    records: Annotated[int, typer.Option(min=100, help="Records in each service's backlog.")] = 10_000,
    large: Annotated[
        int, typer.Option(min=0, help="A second, large backlog for inputs (memory must not grow with it); 0: none.")
    ] = 100_000,
    only: Annotated[
        str | None,
        typer.Option(
            callback=stages,
            help=f"Run only these stages, comma-separated ({', '.join(STAGES)}); ceiling and naive run with any "
            "service.",
        ),
    ] = None,
    chain_rates: Annotated[
        str, typer.Option("--rates", callback=rates, help="Chain rates to try, chains per second.")
    ] = "25,50,100,200,400",
    step_seconds: Annotated[float, typer.Option(min=2, help="How long each chain rate is played.")] = 20.0,
    external: Annotated[
        bool,
        typer.Option(
            "--external", help="Use the cluster of KAFKA_* (its admin) and DATABASE_URL instead of a stack of its own."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")] = False,
) -> None:
    """Measure throughput: the raw pipeline of the services' design (ceiling), a naive per-message subscriber,
    each service draining a backlog of its own published before it starts (timed from ready until lag 0 and
    the outbox empty, every effect verified), the whole chain's latency at steady rates, and two replicas.

    Runs on its own Kafka and Postgres under .stack/bench (wiped at start, stopped at the end), or with
    --external (or FIVECOGS_BENCH_EXTERNAL=1) on the env's cluster with fresh partners, groups and schemas.
    Progress goes to stderr, the table (or --json) to stdout. Exit 0: every stage verified; 1: a verification
    failed (its figure is not printed); 2: usage error; 3: the stack could not be started or reached.
    """
    plan = Plan(
        records=records,
        large=large,
        only=tuple(_split(only)) if only else STAGES,
        rates=tuple(int(r) for r in _split(chain_rates)),
        step_seconds=step_seconds,
    )
    raise typer.Exit(execute(plan, external, as_json))


def execute(plan: Plan, external: bool, as_json: bool) -> int:
    env = BenchEnvironment(external=external)
    # aiokafka logs every retry while a fresh group's coordinator or a new topic's leader is on its way; the bench
    # verifies every effect itself, so those lines are noise here.
    aiokafka_log = logging.getLogger("aiokafka")
    level = aiokafka_log.level
    aiokafka_log.setLevel(logging.CRITICAL)  # given back below: the bench may run inside another program
    signal.signal(signal.SIGTERM, _interrupt)  # like Ctrl-C: stop what the bench started, then exit
    try:
        cluster = env.up(progress=lambda line: say(f"stack: {line}"))
        report = asyncio.run(run(plan, cluster, env.token(), say))
    except StackError as error:
        console.print(f"[bold red]error:[/] {escape(str(error))}")
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return EXIT_INTERRUPTED
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not leave processes behind
            signal.signal(signum, signal.SIG_IGN)
        env.close(progress=lambda _: None)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
        aiokafka_log.setLevel(level)
    show(report, env, as_json)
    return EXIT_VERIFIED if report.verified else EXIT_FAILED


def show(report: Report, env: BenchEnvironment, as_json: bool) -> None:
    if as_json:
        print(json.dumps(to_json(report, env.repo), indent=2))
        return
    out = make_console()
    if report.stages or report.large or report.replicas:
        out.print(stage_table(report))
    if report.chain is not None:
        out.print(chain_table(report.chain))
        out.print(chain_line(report.chain))
    if line := replicas_line(report):
        out.print(line)


def say(line: str) -> None:
    console.print(escape(line), highlight=False)
    sys.stderr.flush()


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
