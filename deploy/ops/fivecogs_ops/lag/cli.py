"""`fivecogs lag` and `fivecogs ops`: register them on the main app with `register(app)`.

Exit codes of `lag`: 0 all OK, 1 some WARN, 2 some STALL/STOP/REWIND, 3 the cluster could not be sampled (or a
--group does not exist).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.live import Live
from rich.text import Text

from fivecogs_ops.choices import unknown
from fivecogs_ops.console import make_console
from fivecogs_ops.lag.report import Report, look
from fivecogs_ops.lag.sampling import DEFAULT_PREFIX, group_names
from fivecogs_ops.lag.store import SampleStore
from fivecogs_ops.lag.table import duration as duration  # re-exported: held_cli reads it from here
from fivecogs_ops.lag.table import render
from fivecogs_shared.kafka_access import KafkaAccess

if TYPE_CHECKING:
    from fivecogs_ops.auth import OperatorTokens

CANNOT_SAMPLE = 3
WATCH_SECONDS = 2.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

GroupOption = Annotated[
    list[str] | None, typer.Option("--group", "-g", help="Only this consumer group (repeatable).", show_default=False)
]
PrefixOption = Annotated[
    str, typer.Option(help="Without --group: every group whose name starts with this (tools' groups left out).")
]
PagePrefixOption = Annotated[
    str, typer.Option("--prefix", help="Every group whose name starts with this (tools' groups left out).")
]
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
    watch: Annotated[
        bool, typer.Option("--watch", help="Look again every 2 s until Ctrl-C or SIGTERM (exit code: the last look's).")
    ] = False,
    window: WindowOption = 600.0,
    store: StoreOption = None,
    every: Annotated[
        bool, typer.Option("--all-partitions", help="List caught-up partitions too (the table; --json has them all).")
    ] = False,
) -> None:
    """Consumer lag per group and partition, in records and seconds, with a status (Burrow's rules, made strict:
    a group with lag and no members is STOP at once). Groups of tools (DLQ replay progress) only with --group.

    Exit code: 0 all OK, 1 some WARN, 2 some STALL, STOP or REWIND, 3 the cluster could not be sampled or a
    --group does not exist."""
    samples = SampleStore(store)
    try:
        # Named groups are checked first: the operator may describe only fivecogs- groups, and a typo must get a
        # did-you-mean, not an authorization error.
        existing = asyncio.run(group_names(_kafka())) if group else []
        if missing := [g for g in group or [] if g not in existing]:
            report = None
        elif watch:
            report = asyncio.run(_watch(samples, group, prefix, window, as_json, every))
        else:
            report = asyncio.run(look(_kafka(), samples, groups=group, prefix=prefix, window=window))
    except Exception as error:  # Kafka unreachable, timeouts: say so, exit 3
        _fail(f"cannot sample consumer lag: {error!r}")
    if missing:
        _fail("; ".join(no_such_group(g, existing, prefix) for g in missing))
    if report is None:
        _fail("stopped before the first look: nothing to report")
    elif not (watch and (as_json or make_console().is_terminal)):  # else the watch has shown it already
        _show(report, as_json, every)
    raise typer.Exit(report.status.exit_code)


def _fail(message: str) -> NoReturn:
    make_console(stderr=True).print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(CANNOT_SAMPLE)


def _show(report: Report, as_json: bool, every: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json(), indent=2), flush=True)
    else:
        console = make_console()
        console.print(render(report, console.width, every))


def no_such_group(given: str, existing: list[str], prefix: str = DEFAULT_PREFIX) -> str:
    """One line. A name without the shared prefix ("inputs") is too short for difflib to match with its full
    name ("fivecogs-inputs"), so that one is suggested outright; any other gets `unknown`'s line."""
    if not given.startswith(prefix) and prefix + given in existing:
        return f"no such consumer group {given!r}: did you mean {prefix + given!r}?"
    return unknown("consumer group", given, existing)


async def _watch(
    samples: SampleStore, groups: list[str] | None, prefix: str, window: float, as_json: bool, every: bool
) -> Report | None:
    """Until Ctrl-C or SIGTERM (both cancel the look in progress); returns the last whole look. On a terminal the
    table is redrawn in place; piped, each look is a JSON line with --json, else the caller prints the last table."""
    loop, me = asyncio.get_running_loop(), asyncio.current_task()
    assert me is not None
    for stop in STOP_SIGNALS:
        loop.add_signal_handler(stop, me.cancel)
    console = make_console()
    live = Live(Text("sampling…"), console=console, auto_refresh=False) if console.is_terminal and not as_json else None
    report = None
    try:
        with live or contextlib.nullcontext():
            while True:
                report = await look(_kafka(), samples, groups=groups, prefix=prefix, window=window, settle=0)
                if live:
                    live.update(render(report, console.width, every), refresh=True)
                elif as_json:
                    print(json.dumps(report.to_json()), flush=True)
                await asyncio.sleep(WATCH_SECONDS)
    except asyncio.CancelledError:
        pass  # stopped: the last look stands
    finally:
        for stop in STOP_SIGNALS:
            loop.remove_signal_handler(stop)
    return report


def ops(
    port: Annotated[int, typer.Option(help="HTTP port of the page.")] = 8090,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    prefix: PagePrefixOption = DEFAULT_PREFIX,
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
    from fivecogs_shared.logs import configure_logging

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
    configure_logging("ops-page")  # a long-running server: JSON lines off a terminal, like the services'
    # Bounded, like the sampler: a browser tab left open must not keep Ctrl-C or SIGTERM waiting.
    uvicorn.run(
        create_app(config), host=host, port=port, log_config=None, log_level="warning", timeout_graceful_shutdown=5
    )


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
