"""Recovery commands: `fivecogs replay`, `fivecogs dlq list|replay`, `fivecogs contracts check|export`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fivecogs_ops.choices import cog as checked_cog
from fivecogs_ops.choices import partner as checked_partner
from fivecogs_ops.console import make_console
from fivecogs_ops.principals import OPERATOR, REPLAYER
from fivecogs_ops.stack import StackError, cluster_access, database_url
from fivecogs_shared.contracts import COGS

if TYPE_CHECKING:
    from fivecogs_ops.dlq import DlqSummary, ParkedOutbox
    from fivecogs_ops.dlq_records import DeadLetterListing

console = make_console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
COG_HELP = "inputs | knowledge | marketing | communication | management"
Cog = Annotated[str, typer.Argument(help=COG_HELP, callback=checked_cog)]
PartnerOption = Annotated[
    str | None,
    typer.Option("--partner", help="Only this partner's dead letters.", callback=checked_partner, show_default=False),
]
OptionalCog = Annotated[
    str | None, typer.Argument(help=f"{COG_HELP} (default: every cog).", callback=checked_cog, show_default=False)
]


def _said(error: BaseException) -> str:
    """An error's message as plain text (never read as markup), or its name when it has none (a timeout)."""
    return escape(str(error) or type(error).__name__)


def replay(
    cog: Annotated[str, typer.Argument(help="The service to rebuild (management).", callback=checked_cog)],
    yes: Annotated[bool, typer.Option("--yes", help="Do it: empty the tables and rewind the group.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Rebuild a service's read model from the log: stop the service, run this, start it again.

    Without --yes, shows what would be emptied and re-read. Exit 2 when refused (service running, not
    replayable); 3 when Kafka or the database cannot be asked."""
    import asyncpg
    from aiokafka.errors import KafkaError

    from fivecogs_ops.replay import ReplayRefused
    from fivecogs_ops.replay import replay as run_replay

    try:
        plan = asyncio.run(run_replay(cluster_access(REPLAYER), database_url(), cog, dry_run=not yes))
    except ReplayRefused as refused:
        console.print(f"[bold red]refused:[/] {_said(refused)}")
        raise typer.Exit(2) from refused
    except (StackError, KafkaError, OSError, TimeoutError, asyncpg.PostgresError) as error:
        console.print(f"[bold red]error:[/] {_said(error)}")
        raise typer.Exit(3) from error
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
def dlq_list(
    cog: OptionalCog = None,
    partner: PartnerOption = None,
    everything: Annotated[bool, typer.Option("--all", help="The records already replayed too.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Records shown at most; the counts are whole.")] = 200,
    as_json: JsonFlag = False,
) -> None:
    """Each record parked in a dead-letter topic (every cog's, or COG's): where it sits, when it was parked, the
    partner, its ce_id and ce_type, the error kind and detail; and the outbox rows Kafka refused for good
    (outbox_parked). Only records still waiting (not yet sent back by `dlq replay`) unless --all.

    Reads only: joins and creates no consumer group.
    Exit 0: nothing waiting; 1: dead letters or parked outbox rows waiting;
    3: Kafka or the database could not be asked."""
    from fivecogs_ops.dlq_show import listing_json, show_listing

    found = _dead_letters(cog, partner, everything, limit)
    parked = [_parked_outbox(service) for service in ([cog] if cog else COGS)]
    readable = [p for p in parked if p is not None]
    if as_json:
        print(json.dumps(listing_json(found, readable), indent=2))
    else:
        show_listing(make_console(), found, readable, limit)
    if len(readable) < len(parked):
        raise typer.Exit(3)
    if found.waiting or any(p.count for p in readable):
        raise typer.Exit(1)


def _dead_letters(cog: str | None, partner: str | None, everything: bool, limit: int) -> DeadLetterListing:
    from aiokafka.errors import KafkaError

    from fivecogs_ops.dlq import dead_letters
    from fivecogs_ops.dlq_records import listing, wanted

    async def read() -> DeadLetterListing:
        kafka = cluster_access(OPERATOR)  # reads only: the least principal that can
        partitions = wanted(await dead_letters(kafka), cog, partner)
        return await listing(kafka, partitions, cog=cog, everything=everything, limit=limit)

    try:
        return asyncio.run(read())
    except (StackError, KafkaError, OSError, TimeoutError) as error:
        console.print(f"[bold red]error:[/] dead letters could not be read from Kafka: {_said(error)}")
        raise typer.Exit(3) from error


def _parked_outbox(service: str) -> ParkedOutbox | None:
    import asyncpg

    from fivecogs_ops.dlq import parked_outbox
    from fivecogs_ops.held import service_schemas

    [where] = service_schemas([service])
    try:
        return asyncio.run(parked_outbox(database_url(), service, where.schema))
    except (StackError, OSError, TimeoutError, ValueError, asyncpg.PostgresError) as error:
        console.print(f"[bold red]error:[/] parked outbox rows of {service} could not be read: {_said(error)}")
        return None


@dlq_app.command("replay")
def dlq_replay(
    cog: Cog,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only this error kind (repeatable), e.g. processing_error.")
    ] = None,
    partner: PartnerOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Send parked records back to the topic they came from, once the cause is fixed. Each record is sent once:
    progress is kept in the consumer group fivecogs-dlq-replay-<cog> (what `dlq list` counts as replayed).
    Exit 3 when Kafka cannot be asked."""
    from aiokafka.errors import KafkaError

    from fivecogs_ops.dlq import drain

    kinds = frozenset(kind) if kind else None
    try:
        summary = asyncio.run(drain(cluster_access(REPLAYER), cog, kinds=kinds, partner=partner))
    except (StackError, KafkaError, OSError, TimeoutError) as error:
        console.print(f"[bold red]error:[/] dead letters could not be replayed: {_said(error)}")
        raise typer.Exit(3) from error
    _show(summary, as_json)


def _show(summary: DlqSummary, as_json: bool) -> None:
    if as_json:
        body = {"topic": summary.topic, "read": summary.read, "replayed": summary.replayed}
        print(json.dumps({**body, "not_whole": summary.not_whole, "by_kind": dict(summary.by_kind)}, indent=2))
        return
    title = f"{summary.topic}: {summary.read} read, {summary.replayed} replayed"
    if summary.not_whole:
        title += f", {summary.not_whole} not replayed (only a slice of a too-large value was kept)"
    table = Table("error kind", "records", title=title)
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
