"""The CLIs' consoles: rich's, but 120 columns wide when the output is a log or a pipe rather than a terminal
(rich would take 80 there and fold every table of the fault suite and the report into unreadable strips).
Messages on stderr are never folded: an error stays on one line, whole, for grep."""

from __future__ import annotations

import os

from rich.console import Console

LOG_WIDTH = 120


def make_console(*, stderr: bool = False) -> Console:
    made = Console(stderr=stderr, soft_wrap=stderr)
    if not made.is_terminal and "COLUMNS" not in os.environ:
        made.width = LOG_WIDTH
    return made
