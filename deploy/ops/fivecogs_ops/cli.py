"""`fivecogs`: the operator and developer command line."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fivecogs_ops.stack import LocalStack, StackError, external_env

app = typer.Typer(
    help="fivecogs: five Kafka services for a community economy's value chain, and the tools to run them.",
    no_args_is_help=True,
    add_completion=False,
)
stack_app = typer.Typer(help="The local Kafka + Postgres stack (no Docker needed).", no_args_is_help=True)
app.add_typer(stack_app, name="stack")

console = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _fail(error: Exception) -> None:
    console.print(f"[bold red]error:[/] {error}")
    raise typer.Exit(1)


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
        Console().print(table)
    if any(row["running"] != "yes" for row in rows):
        raise typer.Exit(3)


@stack_app.command("env")
def stack_env(as_json: JsonFlag = False) -> None:
    """Print KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (eval "$(fivecogs stack env)")."""
    _print_env(external_env() or LocalStack().load().env(), as_json)


def _print_env(env: dict[str, str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(env, indent=2))
    else:
        for name, value in env.items():
            print(f"export {name}={value}")


@app.command("serve")
def serve(
    cog: Annotated[str, typer.Argument(help="inputs | knowledge | marketing | communication | management")],
) -> None:
    """Run one service in this process (the same as its own `fivecogs-<cog>` command)."""
    from fivecogs_ops.services import run_service

    try:
        run_service(cog)
    except KeyError:
        _fail(ValueError(f"no service named {cog!r}"))


@app.command("run")
def run(
    enterprises: Annotated[int, typer.Option(help="How many enterprises the demo simulates.")] = 40,
    seed: Annotated[int, typer.Option(help="Seed of the demo scenario.")] = 7,
) -> None:
    """Stack + five services + the demo scenario + report; the services keep running until Ctrl-C."""
    from fivecogs_ops.devrun import run_everything

    try:
        sys.exit(run_everything(console, enterprises=enterprises, seed=seed))
    except StackError as error:
        _fail(error)


if __name__ == "__main__":
    app()
