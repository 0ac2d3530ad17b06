"""`fivecogs partners add|list|rotate|remove`: a partner's credentials, topics and ACLs (docs/operations.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from aiokafka.errors import KafkaError
from rich.markup import escape
from rich.table import Table

from fivecogs_ops import partners
from fivecogs_ops.console import make_console
from fivecogs_ops.principals import ADMIN
from fivecogs_ops.stack import StackError, cluster_access

partners_app = typer.Typer(
    help="Partners: their Kafka credentials, topics and ACLs. Runs as the provisioning admin.",
    no_args_is_help=True,
)
console = make_console(stderr=True)
T = TypeVar("T")

PartnerId = Annotated[str, typer.Argument(help="The partner's id: lowercase letters, digits and dashes.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def register(app: typer.Typer) -> None:
    app.add_typer(partners_app, name="partners")


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Exit 1 on what the operator must change, 2 when the cluster cannot be reached or refuses the admin."""
    try:
        return asyncio.run(work)
    except partners.PartnerError as error:
        console.print(f"[bold red]error:[/] {escape(str(error))}")
        raise typer.Exit(1) from error
    except (StackError, KafkaError, OSError, TimeoutError) as error:
        console.print(f"[bold red]error:[/] Kafka: {escape(str(error) or type(error).__name__)}")
        raise typer.Exit(2) from error


def _show_once(given: partners.PartnerAccess, as_json: bool) -> None:
    """The only time the password is shown: the partner's client settings, ready to use."""
    if as_json:
        print(json.dumps(given.summary(), indent=2))
        return
    out = make_console()
    summary = given.summary()
    out.print(
        f"[bold]{given.partner}[/] writes ce_source [bold]{summary['ce_source']}[/] (or partner/{given.partner}/…)"
    )
    for cog, topic in summary["writes"].items():
        out.print(f"  writes {cog:<13} {topic}")
    out.print(f"  reads  feedback      {summary['reads']} (consumer groups {summary['consumer_groups']})")
    out.print("client settings (shown once; keep the password in the partner's secret store):")
    for name, value in summary["client"].items():
        out.print(f"  {name} = {value}")


@partners_app.command("add")
def add(
    partner: PartnerId,
    cogs: Annotated[str, typer.Option("--cogs", help="Comma-separated cogs the partner writes to.")],
    as_json: JsonFlag = False,
) -> None:
    """Create the partner (or give it more cogs) with a new password, and print its client settings once."""
    given = _run(partners.add(cluster_access(ADMIN), partner, [c.strip() for c in cogs.split(",") if c.strip()]))
    _show_once(given, as_json)


@partners_app.command("rotate")
def rotate(partner: PartnerId, as_json: JsonFlag = False) -> None:
    """Issue a new password; the old one stops working at once."""
    _show_once(_run(partners.rotate(cluster_access(ADMIN), partner)), as_json)


@partners_app.command("remove")
def remove(partner: PartnerId, as_json: JsonFlag = False) -> None:
    """Revoke the partner's credentials and ACLs; its topics and their history stay."""
    deleted = _run(partners.remove(cluster_access(ADMIN), partner))
    if as_json:
        print(json.dumps({"partner": partner, "acls_deleted": deleted}))
    else:
        console.print(f"{partner}: credentials revoked, {deleted} ACLs deleted (topics kept)")


@partners_app.command("list")
def list_partners(as_json: JsonFlag = False) -> None:
    """Every provisioned partner, the cogs it writes to and whether it has credentials."""
    found = _run(partners.listing(cluster_access(ADMIN)))
    if as_json:
        print(json.dumps([vars(p) for p in found], indent=2))
        return
    make_console().print(partners_table(found))


def partners_table(found: list[partners.PartnerListing]) -> Table:
    """The partner's id never wraps; its list of cogs does, between cogs."""
    table = Table()
    table.add_column("partner", no_wrap=True)
    table.add_column("cogs", ratio=1, min_width=len("communication,"))
    table.add_column("credentials", no_wrap=True)
    for p in found:
        table.add_row(p.partner, ", ".join(p.cogs), "yes" if p.has_credentials else "[red]revoked[/]")
    return table
