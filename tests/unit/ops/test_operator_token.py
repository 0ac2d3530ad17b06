"""The local stack's operator token (`.stack/operator-token`) and how the CLI hands tokens to what it starts."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fivecogs_ops.auth import TOKEN_FILE, TokenError, operator_token, operator_tokens
from fivecogs_ops.services import ServiceProcesses

ENV = "FIVECOGS_OPERATOR_TOKENS"


def test_the_token_is_made_once_private_and_then_read(tmp_path: Path) -> None:
    stack = tmp_path / "stack"  # not there yet: made on the way
    first = operator_token(stack)
    assert stat.S_IMODE((stack / TOKEN_FILE).stat().st_mode) == 0o600
    assert len(first) >= 40  # 32 random bytes, URL-safe base64
    assert operator_token(stack) == first
    assert (stack / TOKEN_FILE).read_text().strip() == first


def test_two_stacks_have_two_tokens(tmp_path: Path) -> None:
    assert operator_token(tmp_path / "a") != operator_token(tmp_path / "b")


def test_the_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        operator_token(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / TOKEN_FILE).stat().st_mode) == 0o600


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    operator_token(tmp_path)
    (tmp_path / TOKEN_FILE).chmod(0o644)
    with pytest.raises(TokenError, match="can be read by others"):
        operator_token(tmp_path)


def test_a_damaged_token_file_is_refused_without_printing_it(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"too-short")
    os.close(fd)
    with pytest.raises(TokenError) as refused:
        operator_token(tmp_path)
    assert "too-short" not in str(refused.value)
    assert "delete it" in str(refused.value)


def test_fivecogs_operator_tokens_wins_over_the_stack_s_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIVECOGS_OPERATOR_TOKENS", "new-operator-token-00000001,old-operator-token-00000002")
    tokens = operator_tokens(tmp_path)
    assert tokens.current == "new-operator-token-00000001"  # the first is the one sent
    assert len(tokens.tokens) == 2
    assert tokens.source == "FIVECOGS_OPERATOR_TOKENS"
    assert not (tmp_path / TOKEN_FILE).exists()  # nothing made that nobody uses


def test_without_the_variable_the_stack_s_token_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIVECOGS_OPERATOR_TOKENS")
    tokens = operator_tokens(tmp_path)
    assert tokens.current == operator_token(tmp_path)
    assert tokens.source == str(tmp_path / TOKEN_FILE)
    assert tokens.current not in repr(tokens)


def test_a_malformed_variable_is_a_token_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIVECOGS_OPERATOR_TOKENS", "tiny")
    with pytest.raises(TokenError, match="FIVECOGS_OPERATOR_TOKENS: operator token #1 is shorter"):
        operator_tokens(tmp_path)


def test_started_services_get_the_token_their_callers_send(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over whatever the caller's shell holds: the CLI then sends exactly what the processes accept."""
    started: list[dict[str, str]] = []

    def popen(command: list[str], *, env: dict[str, str], **_: Any) -> object:
        started.append(env)
        return object()

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setenv("FIVECOGS_OPERATOR_TOKENS", "from-the-shell-token-000001")
    processes = ServiceProcesses(env={}, log_dir=tmp_path, operator_token=operator_token(tmp_path))
    processes.start("management")
    processes.start("inputs", extra_env={"FIVECOGS_OPERATOR_TOKENS": ""})  # a test may lock one on purpose
    assert started[0]["FIVECOGS_OPERATOR_TOKENS"] == operator_token(tmp_path)
    assert started[1]["FIVECOGS_OPERATOR_TOKENS"] == ""
    assert operator_token(tmp_path) not in repr(processes)


def test_fivecogs_serve_accepts_the_local_stack_s_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fivecogs serve` and `fivecogs report` then agree without anybody copying a token around."""
    from typer.testing import CliRunner

    import fivecogs_ops.services
    from fivecogs_ops.cli import app

    seen: list[str] = []
    monkeypatch.setattr(fivecogs_ops.services, "run_service", lambda cog: seen.append(os.environ[ENV]))
    monkeypatch.delenv(ENV)
    monkeypatch.setenv("FIVECOGS_HOME", str(tmp_path))  # the checkout, so the local stack is tmp_path/.stack
    result = CliRunner().invoke(app, ["serve", "management"])
    assert result.exit_code == 0, result.output
    assert seen == [operator_token(tmp_path / ".stack")]
    assert seen[0] not in result.output
