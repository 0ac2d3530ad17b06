"""`fivecogs lag` and `fivecogs ops`: register them on the main app with `register(app)`.

Exit codes of `lag`: 0 all OK, 1 some WARN, 2 some STALL/STOP/REWIND, 3 the cluster could not be sampled (or a
--group does not exist).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fivecogs_ops.console import make_console
from fivecogs_ops.lag.report import GroupReport, Report, look
from fivecogs_ops.lag.sampling import DEFAULT_PREFIX
from fivecogs_ops.lag.store import SampleStore
from fivecogs_shared.kafka_access import KafkaAccess

if TYPE_CHECKING:
    from fivecogs_ops.auth import OperatorTokens

CANNOT_SAMPLE = 3
WATCH_SECONDS = 2.0
STYLE = {"OK": "green", "WARN": "yellow", "STALL": "bold red", "STOP": "bold red", "REWIND": "bold magenta"}

GroupOption = Annotated[
    list[str] | None, typer.Option("--group", "-g", help="Only this consumer group (repeatable).", show_default=False)
]
PrefixOption = Annotated[str, typer.Option(help="Without --group: every group whose name starts with this.")]
WindowOption = Annotated[float, typer.Option("--window", help="Seconds of samples Burrow's rules judge over.")]
StoreOption = Annotated[
    Path | None,
    typer.Option(
        help="Sample file (default: .stack/lag-samples.sqlite3).", envvar="FIVECOGS_LAG_STORE", show_default=False
    ),
]


def lag(
    group: GroupOption = None,
    prefix: PrefixOption = DEFAULT_PREFIX,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout (with --watch: one line per look).")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Look again every 2 s, until Ctrl-C.")] = False,
    window: WindowOption = 600.0,
    store: StoreOption = None,
) -> None:
    """Consumer lag per group and partition, in records and seconds, with a status (Burrow's rules).

    Exit code: 0 all OK, 1 some WARN, 2 some STALL, STOP or REWIND, 3 the cluster could not be sampled or a
    --group does not exist."""
    samples = SampleStore(store)
    show = _json_line if as_json else None
    try:
        if watch:
            report = asyncio.run(_watch(samples, group, prefix, window, show))
        else:
            report = asyncio.run(look(_kafka(), samples, groups=group, prefix=prefix, window=window))
    except Exception as error:  # Kafka unreachable, timeouts: say so, exit 3
        make_console(stderr=True).print(f"[bold red]error:[/] cannot sample consumer lag: {error!r}")
        raise typer.Exit(CANNOT_SAMPLE) from error
    if report is None:
        raise typer.Exit(0)
    if unknown := [g.group for g in report.groups if g.state == "Dead" and not g.partitions]:
        make_console(stderr=True).print(f"[bold red]error:[/] no such consumer group: {', '.join(unknown)}")
        raise typer.Exit(CANNOT_SAMPLE)
    if not watch:
        if as_json:
            print(json.dumps(report.to_json(), indent=2))
        else:
            console = make_console()
            console.print(render(report, console.width))
    raise typer.Exit(report.status.exit_code)


def _json_line(report: Report) -> None:
    print(json.dumps(report.to_json()), flush=True)


async def _watch(
    samples: SampleStore, groups: list[str] | None, prefix: str, window: float, show: Callable[[Report], None] | None
) -> Report | None:
    """Until Ctrl-C; returns the last report, whose status sets the exit code."""
    report = None
    console = make_console()
    with contextlib.ExitStack() as stack:
        live = None if show else stack.enter_context(Live(Text("sampling…"), console=console, auto_refresh=False))
        try:
            while True:
                report = await look(_kafka(), samples, groups=groups, prefix=prefix, window=window, settle=0)
                if live:
                    live.update(render(report, console.width), refresh=True)
                elif show:
                    show(report)
                await asyncio.sleep(WATCH_SECONDS)
        except (KeyboardInterrupt, asyncio.CancelledError):
            return report
    return report


def ops(
    port: Annotated[int, typer.Option(help="HTTP port of the page.")] = 8090,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    prefix: PrefixOption = DEFAULT_PREFIX,
    window: WindowOption = 600.0,
    interval: Annotated[float, typer.Option(help="Seconds between samples.")] = 5.0,
    store: StoreOption = None,
    print_url: Annotated[
        bool, typer.Option("--print-url", help="Print the page's address with the operator token in it (on stdout).")
    ] = False,
    warn_held_expiry: Annotated[
        float, typer.Option(min=0, help="Overall WARN when a held event's wait ends within this (seconds).")
    ] = 60.0,
    warn_outbox_age: Annotated[
        float, typer.Option(min=0, help="Overall WARN when a service's oldest unsent outbox row is this old (seconds).")
    ] = 60.0,
) -> None:
    """Serve the operators' page: the overall status and why, groups' status and lag, an hour of lag per group,
    outbox, held events and dead letters.

    It accepts the tokens of FIVECOGS_OPERATOR_TOKENS, else the local stack's (.stack/operator-token). Open it as
    http://HOST:PORT/#token=TOKEN; --print-url prints that address, token included. Without JavaScript, open
    http://HOST:PORT/summary: the browser asks for a user (any) and a password (the token)."""
    import uvicorn

    from fivecogs_ops.held import service_schemas
    from fivecogs_ops.lag.overall import Thresholds
    from fivecogs_ops.lag.page import PageConfig, create_app

    tokens = _page_tokens()
    config = PageConfig(
        _kafka(),
        _database_url(),
        SampleStore(store),
        prefix,
        window,
        interval,
        services=service_schemas(),  # FIVECOGS_<COG>_DB_SCHEMA where set, as each service reads it
        tokens=tokens.tokens,
        thresholds=Thresholds(warn_held_expiry, warn_outbox_age),
    )
    _announce(f"http://{host}:{port}/", tokens, print_url)
    # Bounded, like the sampler: a browser tab left open must not keep Ctrl-C or SIGTERM waiting.
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)


def _page_tokens() -> OperatorTokens:
    from fivecogs_ops.auth import TokenError, operator_tokens
    from fivecogs_ops.stack import StackError

    try:
        return operator_tokens()
    except (TokenError, StackError) as error:
        make_console(stderr=True).print(f"[bold red]error:[/] {error}")
        raise typer.Exit(1) from error


def _announce(url: str, tokens: OperatorTokens, print_url: bool) -> None:
    """Where the page is; the token itself only on stdout and only with --print-url (a terminal, not a log)."""
    err = make_console(stderr=True)
    err.print(f"ops page on [bold]{url}[/] (JSON: /api/lag, bearer token); Ctrl-C stops")
    if print_url:
        print(f"{url}#token={tokens.current}", flush=True)
    else:
        err.print(f"open it as {url}#token=<token>; the token is in {tokens.source} (or use --print-url)")


def register(app: typer.Typer) -> None:
    app.command("lag")(lag)
    app.command("ops")(ops)


def _kafka() -> KafkaAccess:
    from fivecogs_ops.stack import cluster_access

    return cluster_access()  # the operator principal: describe and read, never write


def _database_url() -> str:
    if url := os.environ.get("DATABASE_URL"):
        return url
    from fivecogs_ops.stack import LocalStack

    return LocalStack().load().database_url


# -- the table -------------------------------------------------------------------------------------------------
def render(report: Report, width: int = 80) -> Group:
    if not report.groups:
        return Group(Text("no consumer groups found", style="dim"))
    return Group(*(_group_table(g, why=width >= 130) for g in report.groups))


def _group_table(g: GroupReport, why: bool) -> Table:
    """One table per group; each partition's reason gets a column when the terminal is wide enough, else the
    worst one is the caption."""
    members = ", ".join(f"{m.client_id}@{m.host}" for m in g.members) or "no members"
    title = Text.assemble(
        (g.group, "bold"), "  ", (g.status.name, STYLE[g.status.name]),
        f"  lag {g.lag:,} ({duration(g.lag_seconds)}) {g.trend.arrow}  ·  {g.state}: {members}",
    )  # fmt: skip
    caption = None if why or g.status.name == "OK" else g.reason
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("topic/partition", no_wrap=True)
    for column in ("committed", "end", "lag", "behind"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)  # the trend arrow
    table.add_column("status", no_wrap=True)
    if why:
        table.add_column("why", style="dim")
    for p in g.partitions:
        cells: list[str | Text] = [
            f"{p.topic}/{p.partition}",
            _n(p.committed),
            _n(p.end),
            _n(p.lag),
            duration(p.lag_seconds),
        ]
        cells += [p.trend.arrow, Text(p.status.name, style=STYLE[p.status.name])]
        table.add_row(*cells, *([p.reason] if why else []))
    return table


def _n(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
