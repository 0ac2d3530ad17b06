"""`fivecogs`: the operator and developer command line."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from fivecogs_ops.auth import TokenError, operator_tokens
from fivecogs_ops.bench import register as register_bench
from fivecogs_ops.choices import cog as checked_cog
from fivecogs_ops.choices import unknown
from fivecogs_ops.console import make_console
from fivecogs_ops.faults import register as register_fault_suite
from fivecogs_ops.held_cli import register as register_held_commands
from fivecogs_ops.lag.cli import register as register_lag_commands
from fivecogs_ops.partners_cli import register as register_partner_commands
from fivecogs_ops.recovery_cli import register as register_recovery_commands
from fivecogs_ops.simulate.arrival import ORDERED, Arrival
from fivecogs_ops.stack import LocalStack, StackError, external_env, masked
from fivecogs_shared.settings import OPERATOR_TOKENS_ENV

app = typer.Typer(
    help="fivecogs: five Kafka services for a community economy's value chain, and the tools to run them.",
    no_args_is_help=True,
    add_completion=False,
    # Help and usage errors as plain text: rich draws errors in a box whose lines fold at 80 columns.
    rich_markup_mode=None,
)
stack_app = typer.Typer(help="The local Kafka + Postgres stack (no Docker needed).", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
register_lag_commands(app)  # `fivecogs lag` and `fivecogs ops`
register_recovery_commands(app)  # `fivecogs replay`, `fivecogs dlq`, `fivecogs contracts`
register_fault_suite(app)  # `fivecogs faults`
register_bench(app)  # `fivecogs bench`
register_partner_commands(app)  # `fivecogs partners`
register_held_commands(app)  # `fivecogs held list`

console = make_console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _fail(error: Exception, code: int = 1) -> NoReturn:
    console.print(f"[bold red]error:[/] {escape(str(error))}")  # plain text: a message may hold brackets
    raise typer.Exit(code)


@stack_app.command("up")
def stack_up(as_json: JsonFlag = False) -> None:
    """Start Kafka and Postgres (idempotent) and print the env that points at them."""
    if env := external_env():
        console.print("[yellow]KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL are set: using them, starting nothing[/]")
    else:
        try:
            with console.status("starting the local stack…") as status:
                state = LocalStack().up(progress=lambda line: _step(status, line))
        except StackError as error:
            _fail(error)
        env = state.env()
    _print_env(env, as_json)


def _step(status: object, line: str) -> None:
    console.print(f"  [green]•[/] {line}")


@stack_app.command("down")
def stack_down() -> None:
    """Stop Kafka and Postgres cleanly (data stays under .stack/)."""
    try:
        LocalStack().down(progress=lambda line: console.print(f"  [green]•[/] {line}"))
    except StackError as error:
        _fail(error)


@stack_app.command("status")
def stack_status(as_json: JsonFlag = False) -> None:
    """Show what runs where. Exit code 0 when both run, 3 otherwise."""
    rows = LocalStack().status()
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        table = Table("component", "running", "pid", "address", "log")
        for row in rows:
            colour = "green" if row["running"] == "yes" else "red"
            table.add_row(row["component"], f"[{colour}]{row['running']}[/]", row["pid"], row["address"], row["log"])
        make_console().print(table)
    if any(row["running"] != "yes" for row in rows):
        raise typer.Exit(3)


@stack_app.command("env")
def stack_env(as_json: JsonFlag = False) -> None:
    """Print KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL, passwords masked (`source .stack/env` sets them), and
    FIVECOGS_<COG>_URL of each service `fivecogs run` or `fivecogs serve` runs now.

    Exit 3 when neither the environment nor a local stack names Kafka and Postgres."""
    from fivecogs_ops.service_urls import service_env

    try:
        stack = LocalStack()
        env = external_env()
        if env is None and not stack.state_file.is_file():
            raise StackError(f"KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL are not set and {stack.state_file} is missing")
    except StackError as error:
        _fail(StackError(f"{error}; `fivecogs stack up` starts a local stack"), 3)
    _print_env({**(env or stack.load().env()), **service_env(stack.dir)}, as_json)


def _print_env(env: dict[str, str], as_json: bool) -> None:
    # No command prints a password: the full values are in .stack/env (mode 0600) for `source`.
    shown = {name: "***" if "PASSWORD" in name else masked(value) for name, value in env.items()}
    if as_json:
        print(json.dumps(shown, indent=2))
    else:
        for name, value in shown.items():
            print(f"{name}={value}")
        if not external_env():
            print(f"# point a shell at the stack: source {LocalStack().env_file}")


@app.command("serve")
def serve(
    cog: Annotated[
        str, typer.Argument(help="inputs | knowledge | marketing | communication | management", callback=checked_cog)
    ],
) -> None:
    """Run one service in this process (the same as its own `fivecogs-<cog>` command).

    Without FIVECOGS_OPERATOR_TOKENS it accepts the local stack's token (.stack/operator-token), as the other
    commands send it; outside a checkout, none (its API is then locked, as `fivecogs-<cog>`'s would be).
    While it runs, its URL is in .stack/services.json, where `fivecogs stack env` and the other tools find it."""
    from fivecogs_ops.service_urls import checkout_stack_dir, own_url, recorded
    from fivecogs_ops.services import run_service

    try:
        os.environ[OPERATOR_TOKENS_ENV] = ",".join(t.get_secret_value() for t in operator_tokens().tokens)
    except StackError:
        pass  # no checkout, so no local stack: the service warns that its API is locked
    except TokenError as error:
        _fail(error)
    url = own_url(cog)
    with recorded(checkout_stack_dir() if url else None, cog, url or ""):
        run_service(cog)


ArrivalOption = Annotated[
    Arrival,
    typer.Option(
        "--arrival",
        help="ordered: step by step as written; shuffled: block by block in a seeded random order, a record "
        "often before what it refers to (held until that comes).",
    ),
]


@app.command("run")
def run(
    enterprises: Annotated[int, typer.Option(help="How many enterprises the demo simulates.")] = 40,
    seed: Annotated[int, typer.Option(help="Seed of the demo scenario.")] = 7,
    arrival: ArrivalOption = ORDERED,
) -> None:
    """Stack + five services + the demo scenario + report; the services keep running until Ctrl-C."""
    from fivecogs_ops.devrun import run_everything

    try:
        sys.exit(run_everything(console, enterprises=enterprises, seed=seed, arrival=arrival))
    except (StackError, TokenError) as error:
        _fail(error)


ManagementUrl = Annotated[
    str | None,
    typer.Option(
        "--management-url",
        help="Where the management service answers HTTP (default: FIVECOGS_MANAGEMENT_URL, else the stack's "
        "record of a running management, else FIVECOGS_MANAGEMENT_HTTP_PORT or 8085 on 127.0.0.1).",
        show_default=False,
    ),
]


def _management(given: str | None, code: int) -> str:
    """The management service's address, or exit `code` with every address tried (service_urls)."""
    from fivecogs_ops.service_urls import ServiceUnreachable, find_service

    try:
        return find_service("management", given)
    except ServiceUnreachable as error:
        _fail(error, code)


@app.command("simulate")
def simulate(
    enterprises: Annotated[int, typer.Option(min=3, help="How many community enterprises the scenario has.")] = 12,
    seed: Annotated[int, typer.Option(help="Seed of the scenario: the same seed plays the same story.")] = 2026,
    management_url: ManagementUrl = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="DATABASE_URL",
            help="The services' Postgres: when given, catching up also waits for their outboxes to empty.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the chain to catch up after a step.")] = 300,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Publish all steps back to back; verify nothing (a load test).")
    ] = False,
    arrival: ArrivalOption = ORDERED,
    as_json: JsonFlag = False,
) -> None:
    """Play partners on the running chain and check it against an independent model of the rules.

    Publishes a seeded scenario across the 14 target provinces in steps (or, with --arrival shuffled, in blocks
    shuffled by the seed), waits for the five services to catch up after each wave and, at the end, for every
    event still held to be answered; then compares every answer, every dead letter and the report (as a delta)
    with the model.
    It provisions the scenario's partners (as the admin: KAFKA_* settings, or the local stack's) and publishes
    each partner's records with that partner's own credentials.
    Exit 0: everything matches; 1: a difference; 2: Kafka or management unreachable, or the chain stuck.
    """
    import asyncio

    from fivecogs_ops.principals import ADMIN
    from fivecogs_ops.simulate.show import simulate_and_show
    from fivecogs_ops.stack import cluster_access

    try:
        kafka = cluster_access(ADMIN)
    except StackError as error:
        _fail(error)

    code = asyncio.run(
        simulate_and_show(
            console,
            kafka=kafka,
            database_url=database_url,
            management_url=_management(management_url, 2),
            token=_token(),
            enterprises=enterprises,
            seed=seed,
            wait=not no_wait,
            timeout=timeout,
            as_json=as_json,
            arrival=arrival,
        )
    )
    raise typer.Exit(code)


def _token() -> str:
    """The token the CLI sends to the services: the first of FIVECOGS_OPERATOR_TOKENS, else the local stack's."""
    try:
        return operator_tokens().current
    except (StackError, TokenError) as error:
        _fail(error)


@app.command("report")
def report(
    management_url: ManagementUrl = None,
    by: Annotated[
        str | None, typer.Option("--by", help="province | region (default: both).", show_default=False)
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Income, costs and distribution by province and region, as management reports them.

    Exit 2 when the management service cannot be reached or refuses the operator token.
    """
    from fivecogs_ops.report import VIEWS, ReportUnavailable, fetch, report_tables

    if by is not None and by not in VIEWS:
        raise typer.BadParameter(unknown("view", by, VIEWS), param_hint="--by")
    views = [by] if by else list(VIEWS)
    token = _token()
    url = _management(management_url, 2)
    try:
        bodies = {view: fetch(url, view, token) for view in views}
    except ReportUnavailable as error:
        _fail(error, 2)
    if as_json:
        print(json.dumps(bodies[by] if by else {f"{v}s": body for v, body in bodies.items()}, indent=2))
        return
    for view, body in bodies.items():
        out = make_console()
        for table in report_tables(body, view, f"report by {view}", out.width):
            out.print(table)


if __name__ == "__main__":
    app()
