"""Every line a service writes off a terminal is one JSON object: its own and the libraries' (issue 13)."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from fivecogs_shared.logs import configure_logging, ensure_logging

SERVICE = "fivecogs-test"


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """configure_logging changes the process's logging: each test leaves it as it found it."""
    root, framework = logging.getLogger(), logging.getLogger("faststream")
    saved = (list(root.handlers), root.level, list(framework.handlers), framework.propagate, framework.level)
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.captureWarnings(False)
    root.handlers[:], root.level = saved[0], saved[1]
    framework.handlers[:], framework.propagate, framework.level = saved[2], saved[3], saved[4]


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """stderr as written, each line parsed: json.loads fails the test on the first line that is not JSON."""
    captured = capsys.readouterr()
    assert captured.out == ""
    return [json.loads(line) for line in captured.err.splitlines()]


def test_library_lines_are_json_with_the_logger_service_level_and_time(capsys) -> None:
    configure_logging(SERVICE, "json", cache=False)
    logging.getLogger("aiokafka.cluster").error("Topic %s not found in cluster metadata", "fivecogs.x.events")
    logging.getLogger("aiokafka.consumer.group_coordinator").warning("Marking the coordinator dead (node 1)")
    logging.getLogger("uvicorn.access").info("GET /readyz 200")  # below the libraries' level: silent
    structlog.get_logger().info("service started", group="g")

    lines = json_lines(capsys)
    assert [line["event"] for line in lines] == [
        "Topic fivecogs.x.events not found in cluster metadata",
        "Marking the coordinator dead (node 1)",
        "service started",
    ]
    assert [(line["logger"], line["level"]) for line in lines[:2]] == [
        ("aiokafka.cluster", "error"),
        ("aiokafka.consumer.group_coordinator", "warning"),
    ]
    for line in lines:
        assert line["service"] == SERVICE
        assert line["timestamp"].endswith("Z")


def test_a_library_exception_is_a_plain_exception_field(capsys) -> None:
    configure_logging(SERVICE, "json", cache=False)
    secret_local = "a-local-no-traceback-may-render"  # noqa: F841  # rich tracebacks would show it
    try:
        raise ConnectionError("broker went away")
    except ConnectionError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")

    [line] = json_lines(capsys)
    assert line["level"] == "error"
    assert isinstance(line["exception"], str)
    assert "ConnectionError: broker went away" in line["exception"]
    assert "a-local-no-traceback-may-render" not in line["exception"]


def test_python_warnings_are_json_lines_too(capsys) -> None:
    configure_logging(SERVICE, "json", cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("this call is deprecated", DeprecationWarning, stacklevel=1)

    [line] = json_lines(capsys)
    assert (line["logger"], line["level"], line["service"]) == ("py.warnings", "warning", SERVICE)
    assert "this call is deprecated" in line["event"]


def test_faststream_lines_leave_its_own_handler_for_ours(capsys) -> None:
    """FastStream gives its logger a coloured handler of its own that does not propagate."""
    configure_logging(SERVICE, "json", cache=False)
    framework = logging.getLogger("faststream")
    framework.info("Consumer c-1 assigned to partitions", extra={"topic": "fivecogs.inputs.events", "group_id": "g"})
    framework.warning("Failed to create topic fivecogs.x: it is not allowed")  # a real warning keeps its level

    assigned, failed = json_lines(capsys)
    assert (assigned["logger"], assigned["level"], assigned["topic"], assigned["group_id"]) == (
        "faststream",
        "info",
        "fivecogs.inputs.events",
        "g",
    )
    assert failed["level"] == "warning"


def test_the_expected_start_and_stop_lines_of_faststream_are_not_warnings(capsys) -> None:
    configure_logging(SERVICE, "json", cache=False)
    framework = logging.getLogger("faststream")
    framework.warning("Auto create topics is disabled. Make sure the topics exist.")
    framework.info("callback for Task-28 is being executed...")
    assert json_lines(capsys) == []

    configure_logging(SERVICE, "json", level="DEBUG", cache=False)
    framework.warning("Auto create topics is disabled. Make sure the topics exist.")
    framework.debug("Received", extra={"topic": "t"})  # per batch: the service's `batch applied` says more
    framework.debug("Processed", extra={"topic": "t"})
    framework.warning("Received a record larger than expected")  # the same first word, as a warning: kept
    disabled, received = json_lines(capsys)
    assert disabled["event"].startswith("Auto create topics is disabled")
    assert disabled["level"] == "debug"
    assert received["level"] == "warning"


def test_configuring_again_replaces_the_handler_and_keeps_others(capsys) -> None:
    someone_elses = logging.NullHandler()
    logging.getLogger().addHandler(someone_elses)
    configure_logging(SERVICE, "json", cache=False)
    configure_logging("fivecogs-other", "json", cache=False)
    logging.getLogger("aiokafka").error("once")

    [line] = json_lines(capsys)
    assert line["event"] == "once"
    assert someone_elses in logging.getLogger().handlers


def test_on_a_terminal_library_lines_are_console_lines_like_ours(capsys) -> None:
    configure_logging(SERVICE, "console", cache=False)
    logging.getLogger("aiokafka.cluster").error("Topic t not found in cluster metadata")
    err = capsys.readouterr().err
    assert "Topic t not found in cluster metadata" in err
    assert "aiokafka.cluster" in err
    assert not err.lstrip().startswith("{")


def test_a_library_s_extra_is_kept_only_where_it_says_what_the_line_is_about(capsys) -> None:
    configure_logging(SERVICE, "json", cache=False)
    logging.getLogger("uvicorn.error").warning(
        "Invalid HTTP request received.", extra={"color_message": "\x1b[1mInvalid HTTP request received.\x1b[0m"}
    )
    [line] = json_lines(capsys)
    assert line["event"] == "Invalid HTTP request received."
    assert "color_message" not in line


def test_a_service_after_a_log_capture_does_not_run_on_the_development_defaults() -> None:
    # capture_logs restores structlog's defaults on exit and leaves is_configured() true: they render tracebacks
    # with every local, which took seconds per dead letter on the event loop.
    with capture_logs():
        pass
    assert structlog.is_configured()
    ensure_logging(SERVICE, "json")
    assert structlog.processors.format_exc_info in structlog.get_config()["processors"]
    with capture_logs() as captured:  # and a capture in progress is left alone
        ensure_logging(SERVICE, "json")
        structlog.get_logger().info("kept")
    assert [line["event"] for line in captured] == ["kept"]


class _Rendered:
    """Counts how often a line carrying it was rendered."""

    count = 0

    def __repr__(self) -> str:
        _Rendered.count += 1
        return "rendered"


@pytest.mark.parametrize(("level", "debug_rendered"), [("INFO", 0), ("DEBUG", 1)])
def test_a_debug_line_is_built_only_when_the_level_writes_it(capsys, level: str, debug_rendered: int) -> None:
    # Per event, below the level: a no-op call, no processor run, nothing rendered (issue 14).
    log = configure_logging(SERVICE, "json", level)
    _Rendered.count = 0
    log.debug("record applied", detail=_Rendered())
    assert (_Rendered.count, len(json_lines(capsys))) == (debug_rendered, debug_rendered)
    log.info("batch applied", detail=_Rendered())
    assert [line["event"] for line in json_lines(capsys)] == ["batch applied"]
    assert structlog.get_config()["cache_logger_on_first_use"] is True
