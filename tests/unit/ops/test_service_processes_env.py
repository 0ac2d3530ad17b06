"""The environment the dev runner gives the services it starts: development, and with it loopback webhooks (the
demo's receivers are local); never loopback webhooks outside development, where the service would refuse them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from fivecogs_ops.services import ServiceProcesses

LOOPBACK = "FIVECOGS_COMMUNICATION_WEBHOOK_ALLOW_LOOPBACK"


def started_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    captured: dict[str, Any] = {}
    real_popen = subprocess.Popen

    def popen(command: list[str], *, env: dict[str, str], **_: Any) -> subprocess.Popen[bytes]:
        captured.update(env)
        return real_popen(["true"])  # a process that ends at once, instead of the service

    monkeypatch.setattr(subprocess, "Popen", popen)  # the module services starts processes with
    ServiceProcesses(env={}, log_dir=tmp_path, operator_token="t" * 32).start("communication")
    return captured


def test_development_processes_may_post_to_local_receivers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FIVECOGS_ENVIRONMENT", raising=False)
    monkeypatch.delenv(LOOPBACK, raising=False)
    env = started_env(monkeypatch, tmp_path)
    assert (env["FIVECOGS_ENVIRONMENT"], env[LOOPBACK]) == ("development", "true")


def test_outside_development_loopback_is_not_turned_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FIVECOGS_ENVIRONMENT", "production")
    monkeypatch.delenv(LOOPBACK, raising=False)
    assert LOOPBACK not in started_env(monkeypatch, tmp_path)


def test_an_explicit_choice_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FIVECOGS_ENVIRONMENT", raising=False)
    monkeypatch.setenv(LOOPBACK, "false")
    assert started_env(monkeypatch, tmp_path)[LOOPBACK] == "false"
