"""Names a user types (cogs, groups, views): a wrong one gets one line naming the valid choices and, when one is
close, a "did you mean" — never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import typer

from fivecogs_shared.contracts import COGS
from fivecogs_shared.contracts.topics import PARTNER_ID


def unknown(what: str, given: str, choices: Iterable[str]) -> str:
    """`unknown cog 'input': did you mean 'inputs'? (choices: inputs, knowledge, …)`"""
    options = list(dict.fromkeys(choices))  # as given: cogs read in their value-chain order
    close = difflib.get_close_matches(given, options, n=1, cutoff=0.6)
    hint = f": did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(options) if options else "none"
    return f"unknown {what} {given!r}{hint} (choices: {listed})"


def cog(value: str | None) -> str | None:
    """A typer callback for a cog argument: exit 2 with the one-line message when it is not a cog (None: not
    given, for an optional one)."""
    if value is not None and value not in COGS:
        raise typer.BadParameter(unknown("cog", value, COGS))
    return value


def partner(value: str | None) -> str | None:
    """A typer callback for a partner id: exit 2 with one line when it cannot be one (None: not given)."""
    if value is not None and not PARTNER_ID.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not a partner id (lowercase letters, digits and dashes)")
    return value
