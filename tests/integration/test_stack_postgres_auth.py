"""The local stack's Postgres asks every client for a password, and no command prints it."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import asyncpg
import pytest

from fivecogs_ops.stack import LocalStack, masked
from tests.conftest import REPO


@pytest.fixture
def local(stack_env) -> LocalStack:
    if stack_env.origin != "local stack":
        pytest.skip(f"about the local stack; this run uses {stack_env.origin}")
    return LocalStack(REPO)


@pytest.mark.parametrize("password", [None, "", "wrong", "postgres"])
async def test_a_client_without_the_password_is_refused(local: LocalStack, password: str | None) -> None:
    state = local.load()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(
            host="127.0.0.1", port=state.postgres_port, user="postgres", database="fivecogs", password=password
        )


async def test_the_generated_password_opens_it(local: LocalStack) -> None:
    conn = await asyncpg.connect(local.load().database_url)
    try:
        method = await conn.fetchval(
            "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'postgres'"
        )
    finally:
        await conn.close()
    assert method is True


def test_the_secrets_are_private_and_never_printed(local: LocalStack) -> None:
    password = local.load().postgres_password
    assert len(password) >= 24
    for secret_file in (local.pg_password, local.env_file):
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert password not in local.state_file.read_text()
    for command in (["stack", "env"], ["stack", "env", "--json"], ["stack", "status", "--json"]):
        shown = subprocess.run(
            [sys.executable, "-m", "fivecogs_ops.cli", *command], capture_output=True, text=True, cwd=REPO
        )
        assert password not in shown.stdout + shown.stderr, command
        assert "postgres:***@" in shown.stdout, command
    assert json.loads(
        subprocess.run(
            [sys.executable, "-m", "fivecogs_ops.cli", "stack", "env", "--json"],
            capture_output=True,
            text=True,
            cwd=REPO,
        ).stdout
    )["DATABASE_URL"] == masked(local.load().database_url)


def test_masking_keeps_everything_but_the_password() -> None:
    assert masked("postgresql://postgres:s3cr@t@127.0.0.1:5433/db") == "postgresql://postgres:***@127.0.0.1:5433/db"
    assert masked("postgresql://postgres@127.0.0.1/db") == "postgresql://postgres@127.0.0.1/db"
    assert masked("127.0.0.1:9092") == "127.0.0.1:9092"
