"""Recovery commands: `fivecogs replay`, `fivecogs dlq list|replay`, `fivecogs contracts check|export`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Annotated

import typer
from rich.table import Table

from fivecogs_ops.console import make_console
from fivecogs_ops.stack import LocalStack, external_env

console = make_console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
Cog = Annotated[str, typer.Argument(help="inputs | knowledge | marketing | communication | management")]


def _env() -> dict[str, str]:
    return external_env() or LocalStack().load().env()


def replay(
    cog: Annotated[str, typer.Argument(help="The service to rebuild (management).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do it: empty the tables and rewind the group.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Rebuild a service's read model from the log: stop the service, run this, start it again.

    Without --yes, shows what would be emptied and re-read. Exit 2 when refused (service running, not
    replayable)."""
    from fivecogs_ops.replay import ReplayRefused
    from fivecogs_ops.replay import replay as run_replay

    env = _env()
    try:
        plan = asyncio.run(run_replay(env["KAFKA_BOOTSTRAP_SERVERS"], env["DATABASE_URL"], cog, dry_run=not yes))
    except ReplayRefused as refused:
        console.print(f"[bold red]refused:[/] {refused}")
        raise typer.Exit(2) from refused
    if as_json:
        print(json.dumps({**dataclasses.asdict(plan), "done": yes}, indent=2))
        return
    verb = "emptied" if yes else "would empty"
    console.print(f"{verb} {len(plan.tables)} tables of schema {cog}: {', '.join(plan.tables)}")
    console.print(
        f"{'rewound' if yes else 'would rewind'} fivecogs-{cog} to offset 0 on {plan.partitions} partitions"
        f" ({plan.events} records to read again)"
    )
    console.print(f"start the service (fivecogs-{cog}) to rebuild" if yes else "run again with --yes to do it")


dlq_app = typer.Typer(help="Dead-letter topics: what is parked there, and sending it back.", no_args_is_help=True)


@dlq_app.command("list")
def dlq_list(cog: Cog, as_json: JsonFlag = False) -> None:
    """Count the records parked in fivecogs.<cog>.ingest.dlq, by error kind (reads only)."""
    from fivecogs_ops.dlq import drain

    summary = asyncio.run(drain(_env()["KAFKA_BOOTSTRAP_SERVERS"], cog, replay=False))
    _show(summary, as_json)


@dlq_app.command("replay")
def dlq_replay(
    cog: Cog,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only this error kind (repeatable), e.g. processing_error.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Send parked records back to the topic they came from, once the cause is fixed. Each record is sent once:
    progress is kept in the consumer group fivecogs-dlq-replay-<cog>."""
    from fivecogs_ops.dlq import drain

    kinds = frozenset(kind) if kind else None
    summary = asyncio.run(drain(_env()["KAFKA_BOOTSTRAP_SERVERS"], cog, kinds=kinds, replay=True))
    _show(summary, as_json)


def _show(summary: object, as_json: bool) -> None:
    from fivecogs_ops.dlq import DlqSummary

    assert isinstance(summary, DlqSummary)
    if as_json:
        print(
            json.dumps(
                {
                    "topic": summary.topic,
                    "read": summary.read,
                    "replayed": summary.replayed,
                    "by_kind": dict(summary.by_kind),
                },
                indent=2,
            )
        )
        return
    table = Table("error kind", "records", title=f"{summary.topic}: {summary.read} read, {summary.replayed} replayed")
    for kind, count in summary.by_kind.most_common():
        table.add_row(kind, str(count))
    make_console().print(table)


contracts_app = typer.Typer(help="The published event contracts (JSON Schemas).", no_args_is_help=True)


@contracts_app.command("check")
def contracts_check() -> None:
    """Compare the models with the published schemas. Exit 1 on an incompatible change."""
    from fivecogs_shared.contracts.published import breaking_changes, current_schemas, published_schemas

    problems = breaking_changes(published_schemas(), current_schemas())
    for problem in problems:
        console.print(f"[red]incompatible:[/] {problem}")
    if problems:
        raise typer.Exit(1)
    console.print("[green]compatible with every published contract[/]")


@contracts_app.command("export")
def contracts_export() -> None:
    """Publish the current schemas (after a compatible change); refuses an incompatible one."""
    from fivecogs_shared.contracts.published import (
        PUBLISHED_DIR,
        breaking_changes,
        current_schemas,
        export,
        published_schemas,
    )

    if problems := breaking_changes(published_schemas(), current_schemas()):
        for problem in problems:
            console.print(f"[red]incompatible:[/] {problem}")
        console.print("publish it as a new .vN type beside the old one instead")
        raise typer.Exit(1)
    console.print(f"wrote {len(export())} schemas to {PUBLISHED_DIR}")


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
    app.add_typer(dlq_app, name="dlq")
    app.add_typer(contracts_app, name="contracts")
