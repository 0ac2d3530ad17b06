"""`fivecogs held list [COG]`: the events each service holds until what they refer to is applied."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fivecogs_ops.choices import cog as checked_cog
from fivecogs_ops.console import make_console
from fivecogs_ops.held import (
    HELD_SHOWN,
    HeldEvent,
    ServiceHeld,
    ServiceSchema,
    held_json,
    reason_filter,
    service_schemas,
)
from fivecogs_ops.lag.cli import duration
from fivecogs_ops.stack import StackError, database_url
from fivecogs_shared.contracts import COGS

held_app = typer.Typer(
    help="Held events: partner or upstream events waiting for what they refer to (an enterprise not registered yet, "
    "a delivery not received yet), applied when it is, rejected when the wait (FIVECOGS_HOLD_SECONDS) expires.",
    no_args_is_help=True,
)


@held_app.command("list")
def held_list(
    cog: Annotated[
        str | None,
        typer.Argument(
            help="inputs | knowledge | marketing | communication | management (default: all five).",
            callback=checked_cog,
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option(help="Only this reason: rule:unknown_enterprise, or unknown_enterprise.", show_default=False),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option(
            help="The service's Postgres schema, with COG (default: FIVECOGS_<COG>_DB_SCHEMA, else the cog's name).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="Events listed per service, the oldest first.")] = HELD_SHOWN,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """List the held events of a service (or of all five) with, per service, how many are held and for how long
    the oldest has waited, by reason. Each event: service, reason, the reference it awaits, the partner's source,
    event id and type, where it was read (topic/partition@offset), how long it has been held, when its wait expires.

    Reads only, through DATABASE_URL (else the local stack's Postgres). Exit 0; 1 when the database cannot be read.
    """
    import asyncpg

    from fivecogs_ops.held import held_events

    err = make_console(stderr=True)
    if schema is not None and cog is None:
        raise typer.BadParameter("--schema names one service's schema: give the COG too", param_hint="--schema")
    services = (ServiceSchema(cog, schema),) if cog and schema else service_schemas([cog] if cog else COGS)
    wanted = reason_filter(reason)
    try:
        found = asyncio.run(held_events(database_url(), services, reason=wanted, limit=limit))
    except (StackError, OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        err.print(f"[bold red]error:[/] held events could not be read: {error or type(error).__name__}")
        raise typer.Exit(1) from error
    if as_json:
        print(json.dumps(held_json(found), indent=2))
        return
    show(make_console(), found, wanted)


# -- what it prints ----------------------------------------------------------------------------------------------
def show(out: Console, found: Sequence[ServiceHeld], reason: str | None = None) -> None:
    """A summary line per service (never folded: one line per service, for grep), then the held events' table."""
    for s in found:
        out.print(summary_line(s), soft_wrap=True)
    if title := _title(found):
        out.print(title, soft_wrap=True)  # above the table, not its title: a narrow table would fold it
    if table := events_table(found):
        out.print(table)
    else:
        out.print(Text(f"no events held{f' for {reason}' if reason else ''}", style="dim"))


def events_table(found: Sequence[ServiceHeld]) -> Table | None:
    """Every held event listed, oldest first within each service; None when there is none."""
    events = [(s.service, e) for s in found for e in s.events]
    if not events:
        return None
    # Two columns, each fact on a line of its own: names and ids never wrap, so 80 columns show them whole.
    table = Table(
        box=box.SIMPLE_HEAD,
        show_lines=True,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("event id · type · source\ntopic · partition@offset", no_wrap=True)
    table.add_column("service · reason\nawaits · held for", overflow="fold", ratio=1, min_width=24)
    for service, e in events:
        event = [Text(e.event_id, "bold"), Text(e.event_type), Text(e.source), Text(_position(e), "dim")]
        waiting = [
            Text(service, "bold"),
            Text(e.reason),
            Text(e.awaits, "bold"),
            Text(f"held {duration(e.held_seconds)}"),
        ]
        table.add_row(Text("\n").join(event), Text("\n").join([*waiting, expires_in(e.expires_in_seconds)]))
    return table


def summary_line(s: ServiceHeld) -> Text:
    line = Text.assemble((s.service, "bold"), ": ")
    if s.count is None:
        line.append(f"no held table in schema {s.schema} (the service has not started since held events came)")
        return line
    line.append(f"{s.count:,} held", style="yellow" if s.count else "green")
    for r in s.by_reason:
        line.append(f" · {r.reason} {r.count:,}, oldest {duration(r.oldest_seconds)}")
    if s.schema != s.service:
        line.append(f"  (schema {s.schema})", style="dim")
    return line


def expires_in(seconds: float) -> Text:
    """The time left; past it, how long overdue: the service rejects it within a second when it runs."""
    if seconds < 0:
        return Text(f"overdue {duration(-seconds)}", style="bold red")
    return Text(f"expires in {duration(seconds)}")


def _position(e: HeldEvent) -> str:
    # The topic alone on its line: the longest name in the row, the one that sets the column's width.
    return f"{e.topic}\n{e.partition}@{e.offset}"


def _title(found: Sequence[ServiceHeld]) -> str | None:
    cut = [f"{s.service}: the oldest {len(s.events):,} of {s.count:,}" for s in found if (s.count or 0) > len(s.events)]
    return f"held events ({'; '.join(cut)} shown; --limit for more)" if cut else None


def register(app: typer.Typer) -> None:
    app.add_typer(held_app, name="held")
