"""structlog set-up: JSON lines for machines, pretty console output when a person watches a terminal.

Every line goes the same way, the service's own and the libraries' (aiokafka, faststream, uvicorn, asyncpg,
Python's warnings): the libraries' stdlib records pass the root handler's `ProcessorFormatter`, with the same
processors and renderer as structlog's lines, plus the logger's name. Off a terminal, each line is one JSON object
with `timestamp`, `level` and `service`.

Tracebacks are always plain text (an `exception` string field), never rich ones with every frame's locals:
rendering a batch of records as a local took seconds to a minute, on the event loop, during which the service
consumed, heartbeated and relayed nothing (seen as a consumer idle for 30 s with records waiting). `running()`
therefore configures logging itself when whoever embeds the service has not.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TextIO, cast

import faststream  # noqa: F401  # creates the logger that _route_libraries re-routes
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# Library loggers below this level stay silent: aiokafka logs every fetch at debug, uvicorn every request at info.
LIBRARY_LEVEL = logging.WARNING
# The library lines that are not what their level says (logger, message start, the level they are given). No
# real warning is among them: each is expected on every normal start or stop of a fivecogs service.
DEMOTED: tuple[tuple[str, str, int], ...] = (
    # Topics are created by the services and by provisioning, never by a consumer: expected, not a warning.
    ("faststream", "Auto create topics is disabled", logging.DEBUG),
    ("faststream", "callback for ", logging.DEBUG),  # a consuming task ended: at every stop
    # Per batch received and processed (at the debug level service.build_broker gives them): not written at all,
    # the service's own `batch applied` line says more, once.
    ("faststream", "Received", logging.NOTSET),
    ("faststream", "Processed", logging.NOTSET),
)

EXTRAS = ("topic", "group_id")  # of a library record's `extra`: what FastStream says a line is about


def configure_logging(
    service: str, fmt: str = "auto", level: str = "INFO", *, cache: bool = True
) -> structlog.stdlib.BoundLogger:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Processor = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    threshold = logging.getLevelName(level.upper())
    shared = _processors(service)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _Stderr())),
        cache_logger_on_first_use=cache,
    )
    _route_libraries(shared, renderer, threshold)
    structlog.contextvars.bind_contextvars(service=service)
    logger: structlog.stdlib.BoundLogger = structlog.get_logger()
    return logger


def ensure_logging(service: str, fmt: str = "auto", level: str = "INFO") -> None:
    """Configure logging unless the process already has: an embedded service (tests, a custom runner) must not
    run on structlog's development defaults, which render tracebacks with all locals. Loggers are not cached, so
    that tools which capture logs (structlog.testing.capture_logs) still can."""
    if not structlog.is_configured() or _renders_rich_tracebacks():
        configure_logging(service, fmt, level, cache=False)


def _renders_rich_tracebacks() -> bool:
    """structlog's development defaults are back in effect: `is_configured()` stays true after a capture_logs
    block restores them, and a service embedded after one must not render its tracebacks with every local."""
    processors = structlog.get_config()["processors"]
    console = any(isinstance(p, structlog.dev.ConsoleRenderer) for p in processors)
    return console and structlog.processors.format_exc_info not in processors


def _processors(service: str) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        _ServiceName(service),
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]


def _route_libraries(shared: Sequence[Processor], renderer: Processor, threshold: int) -> None:
    """One handler on the root logger, in place of any this module installed before (never anyone else's)."""
    handler = _LibraryHandler(_Stderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # The logger's name and FastStream's context (uvicorn's `extra` is its message again, in colour).
            foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder(EXTRAS), *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(_demote)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _LibraryHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(LIBRARY_LEVEL, threshold))
    # FastStream gives its logger a coloured handler of its own, cut off from the root's (at import, hence the
    # import above): it goes through the root handler instead. Its few lines (partitions assigned, a consumer
    # restarting) are the service's business, at the service's level.
    framework = logging.getLogger("faststream")
    for own in list(framework.handlers):
        framework.removeHandler(own)
    framework.propagate = True
    framework.setLevel(threshold)
    logging.captureWarnings(True)  # warnings.warn() would print two plain lines on stderr


def _demote(record: logging.LogRecord) -> bool:
    """Give the lines in DEMOTED their true level; False drops one below the level its logger lets through.
    A line DEMOTED drops (NOTSET) is dropped only at debug: the same words as a warning are kept."""
    message = str(record.msg)
    for name, start, level in DEMOTED:
        if record.name.startswith(name) and message.startswith(start):
            if level == logging.NOTSET:
                return record.levelno > logging.DEBUG
            record.levelno, record.levelname = level, logging.getLevelName(level)
            return logging.getLogger(record.name).isEnabledFor(level)
    return True


class _ServiceName:
    """`service` on every line, also on those logged where the bound context is not (another thread, say)."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        event.setdefault("service", self.service)
        return event


class _LibraryHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler this module installs (and replaces when configured again)."""


class _Stderr:
    """sys.stderr as it is at each write: test runners and daemons replace it after logging is configured."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
