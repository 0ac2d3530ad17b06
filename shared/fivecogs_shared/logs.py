"""structlog set-up: JSON lines for machines, pretty console output when a person watches a terminal.

Tracebacks are always plain text, never rich ones with every frame's locals: rendering a batch of records as a
local took seconds to a minute, on the event loop, during which the service consumed, heartbeated and relayed
nothing (seen as a consumer idle for 30 s with records waiting). `running()` therefore configures logging
itself when whoever embeds the service has not.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog


def configure_logging(
    service: str, fmt: str = "auto", level: str = "INFO", *, cache: bool = True
) -> structlog.stdlib.BoundLogger:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _Stderr())),
        cache_logger_on_first_use=cache,
    )
    # Libraries log through stdlib logging; keep their warnings, in the same stream.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    structlog.contextvars.bind_contextvars(service=service)
    logger: structlog.stdlib.BoundLogger = structlog.get_logger()
    return logger


def ensure_logging(service: str, fmt: str = "auto", level: str = "INFO") -> None:
    """Configure logging unless the process already has: an embedded service (tests, a custom runner) must not
    run on structlog's development defaults, which render tracebacks with all locals. Loggers are not cached, so
    that tools which capture logs (structlog.testing.capture_logs) still can."""
    if not structlog.is_configured():
        configure_logging(service, fmt, level, cache=False)


class _Stderr:
    """sys.stderr as it is at each write: test runners and daemons replace it after logging is configured."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
