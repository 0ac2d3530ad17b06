"""How a tool finds a service: the address given, else the stack's record of a running one, then its port; the
record `fivecogs run`/`serve` keep; `stack env` printing it; and the one-line error naming every address tried."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fivecogs_ops.cli import app
from fivecogs_ops.service_urls import (
    Candidate,
    ServiceUnreachable,
    candidates,
    find_service,
    forget_service,
    record_service,
    recorded,
    running_services,
)
from tests.support import free_port


@pytest.fixture(autouse=True)
def _no_service_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts from nothing: no FIVECOGS_<COG>_URL / _HTTP_PORT, and a stack directory of its own."""
    for name in list(os.environ):
        if name.startswith("FIVECOGS_") and name.endswith(("_URL", "_HTTP_PORT")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FIVECOGS_HOME", str(tmp_path))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_an_address_given_is_the_only_one_tried(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    record_service(tmp_path, "management", "http://127.0.0.1:9999")
    assert candidates("management", "http://10.0.0.5:8085/", tmp_path) == [Candidate("http://10.0.0.5:8085", "option")]
    monkeypatch.setenv("FIVECOGS_MANAGEMENT_URL", "http://127.0.0.1:8185")
    assert candidates("management", None, tmp_path) == [Candidate("http://127.0.0.1:8185", "FIVECOGS_MANAGEMENT_URL")]


def test_the_stack_record_comes_before_the_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert candidates("management", None, tmp_path) == [Candidate("http://127.0.0.1:8085", "default port")]
    record_service(tmp_path, "management", "http://127.0.0.1:18085")
    monkeypatch.setenv("FIVECOGS_MANAGEMENT_HTTP_PORT", "28085")
    assert candidates("management", None, tmp_path) == [
        Candidate("http://127.0.0.1:18085", str(tmp_path / "services.json")),
        Candidate("http://127.0.0.1:28085", "FIVECOGS_MANAGEMENT_HTTP_PORT"),
    ]


def test_a_record_of_a_process_that_has_gone_is_ignored(tmp_path: Path) -> None:
    record_service(tmp_path, "inputs", "http://127.0.0.1:18081", pid=_dead_pid())
    record_service(tmp_path, "knowledge", "http://127.0.0.1:18082")  # this process: running
    assert running_services(tmp_path) == {"knowledge": "http://127.0.0.1:18082"}


def test_a_service_is_recorded_while_it_runs_and_only_its_own_entry_is_dropped(tmp_path: Path) -> None:
    with recorded(tmp_path, "marketing", "http://127.0.0.1:18083"):
        assert running_services(tmp_path) == {"marketing": "http://127.0.0.1:18083"}
    assert running_services(tmp_path) == {}
    record_service(tmp_path, "inputs", "http://127.0.0.1:18081")
    forget_service(tmp_path, "inputs", pid=_dead_pid())  # another process's exit: not this entry
    assert running_services(tmp_path) == {"inputs": "http://127.0.0.1:18081"}
    assert json.loads((tmp_path / "services.json").read_text())["inputs"]["pid"] == os.getpid()


def test_the_error_names_every_address_tried_and_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    recorded_port, port = free_port(), free_port()
    record_service(tmp_path / ".stack", "management", f"http://127.0.0.1:{recorded_port}")
    monkeypatch.setenv("FIVECOGS_MANAGEMENT_HTTP_PORT", str(port))
    with pytest.raises(ServiceUnreachable) as raised:
        find_service("management", timeout=1)
    assert str(raised.value) == (
        f"cannot reach management: tried http://127.0.0.1:{recorded_port} ({tmp_path}/.stack/services.json): "
        f"connection refused; http://127.0.0.1:{port} (FIVECOGS_MANAGEMENT_HTTP_PORT): connection refused"
    )


def test_stack_env_prints_each_running_service_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("DATABASE_URL", "postgresql://fivecogs:secret@127.0.0.1:1/fivecogs")
    record_service(tmp_path / ".stack", "management", "http://127.0.0.1:18085")
    record_service(tmp_path / ".stack", "inputs", "http://127.0.0.1:18081", pid=_dead_pid())
    shown = CliRunner().invoke(app, ["stack", "env"])
    assert shown.exit_code == 0, shown.output
    assert "FIVECOGS_MANAGEMENT_URL=http://127.0.0.1:18085" in shown.stdout.splitlines()
    assert "FIVECOGS_INPUTS_URL" not in shown.stdout  # stopped
    body = json.loads(CliRunner().invoke(app, ["stack", "env", "--json"]).stdout)
    assert body["FIVECOGS_MANAGEMENT_URL"] == "http://127.0.0.1:18085"
    assert body["DATABASE_URL"] == "postgresql://fivecogs:***@127.0.0.1:1/fivecogs"


def test_report_says_what_it_tried_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("FIVECOGS_MANAGEMENT_URL", f"http://127.0.0.1:{port}")
    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: cannot reach management: tried http://127.0.0.1:{port} (FIVECOGS_MANAGEMENT_URL): connection refused"
    )


def test_stack_env_without_a_stack_says_what_it_looked_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["stack", "env"])
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        f"error: KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL are not set and {tmp_path}/.stack/stack.json is missing; "
        "`fivecogs stack up` starts a local stack"
    )


def test_a_recorded_service_on_the_default_port_is_tried_once(tmp_path: Path) -> None:
    record_service(tmp_path, "inputs", "http://127.0.0.1:8081")
    assert candidates("inputs", None, tmp_path) == [Candidate("http://127.0.0.1:8081", str(tmp_path / "services.json"))]


@pytest.mark.parametrize("given", ["not a url", "ftp://127.0.0.1:1", "http://127.0.0.1:99999"])
def test_an_address_that_cannot_be_one_is_a_reason_not_a_traceback(given: str) -> None:
    result = CliRunner().invoke(app, ["report", "--management-url", given])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot reach management: tried {given} (option): ")
