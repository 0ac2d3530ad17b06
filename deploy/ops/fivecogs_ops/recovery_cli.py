"""Recovery commands: `fivecogs replay`, `fivecogs dlq list|replay`, `fivecogs contracts check|export`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fivecogs_ops.console import make_console
from fivecogs_ops.principals import REPLAYER
from fivecogs_ops.stack import LocalStack, cluster_access, external_env

if TYPE_CHECKING:
    from fivecogs_ops.dlq import ParkedOutbox

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
        plan = asyncio.run(run_replay(cluster_access(REPLAYER), env["DATABASE_URL"], cog, dry_run=not yes))
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
    """Count the records parked in the cog's dead-letter topics (fivecogs.<cog>.ingest.<partner>.dlq) by error
    kind, and list the service's outbox rows Kafka refused for good (outbox_parked). Reads only. Exit 3 when the
    database cannot be asked."""
    from fivecogs_ops.dlq import drain

    env = _env()
    summary = asyncio.run(drain(cluster_access(REPLAYER), cog, replay=False))
    parked = _parked_outbox(env["DATABASE_URL"], cog)
    _show(summary, as_json, parked)
    if parked is None:
        raise typer.Exit(3)


def _parked_outbox(dsn: str, cog: str) -> ParkedOutbox | None:
    import asyncpg

    from fivecogs_ops.dlq import parked_outbox

    try:
        return asyncio.run(parked_outbox(dsn, cog))
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        console.print(f"[bold red]error:[/] parked outbox rows of {cog} could not be read: {error}")
        return None


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
    summary = asyncio.run(drain(cluster_access(REPLAYER), cog, kinds=kinds, replay=True))
    _show(summary, as_json)


def _show(summary: object, as_json: bool, parked: ParkedOutbox | None = None) -> None:
    from fivecogs_ops.dlq import DlqSummary

    assert isinstance(summary, DlqSummary)
    if as_json:
        body: dict[str, object] = {
            "topic": summary.topic,
            "read": summary.read,
            "replayed": summary.replayed,
            "not_whole": summary.not_whole,
            "by_kind": dict(summary.by_kind),
        }
        if parked is not None:
            body["parked_outbox"] = _parked_json(parked)
        print(json.dumps(body, indent=2))
        return
    title = f"{summary.topic}: {summary.read} read, {summary.replayed} replayed"
    if summary.not_whole:
        title += f", {summary.not_whole} not replayed (only a slice of a too-large value was kept)"
    table = Table("error kind", "records", title=title)
    for kind, count in summary.by_kind.most_common():
        table.add_row(kind, str(count))
    make_console().print(table)
    if parked is not None:
        _print_parked(parked)


def _parked_json(parked: ParkedOutbox) -> dict[str, object]:
    rows = [{"service": parked.service, **dataclasses.asdict(row)} for row in parked.rows]
    for row, parked_row in zip(rows, parked.rows, strict=True):
        row["key"] = _key(parked_row.key)
        row["parked_at"] = parked_row.parked_at.isoformat()
    return {"service": parked.service, "count": parked.count, "shown": len(rows), "rows": rows}


def _print_parked(parked: ParkedOutbox) -> None:
    out = make_console()
    if not parked.rows:
        table_missing = " (no outbox_parked table yet: it comes with the service's next start)"
        out.print(f"parked outbox rows of {parked.service}: 0{table_missing if parked.count is None else ''}")
        return
    assert parked.count is not None
    shown = f", the oldest {len(parked.rows)} shown" if len(parked.rows) < parked.count else ""
    table = Table("service", "topic", "key", "bytes", "error", "parked_at")
    table.title = f"parked outbox rows of {parked.service}: {parked.count}{shown}"
    for row in parked.rows:
        when = row.parked_at.isoformat(timespec="seconds")
        table.add_row(parked.service, row.topic, _key(row.key) or "", f"{row.bytes:,}", row.error, when)
    out.print(table)


def _key(key: bytes | None) -> str | None:
    return None if key is None else key.decode("utf-8", "replace")


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
