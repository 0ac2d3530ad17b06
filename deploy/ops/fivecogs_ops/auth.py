"""Operator tokens on an operator's machine: the local stack's own token, and which tokens the CLI sends and the
ops page accepts. Nothing here prints or logs a token; messages say where it is kept instead."""

from __future__ import annotations

import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr

from fivecogs_shared.settings import OPERATOR_TOKENS_ENV, checked_tokens, parse_operator_tokens

TOKEN_FILE = "operator-token"
_WRITER_GRACE_SECONDS = 2.0  # another process may have created the file and not written it yet


class TokenError(RuntimeError):
    """The tokens cannot be had (a file others can read, a malformed variable); the message says what to fix."""


def operator_token(stack_dir: Path) -> str:
    """The local stack's operator token, `<stack_dir>/operator-token`: made once, then read on every call."""
    path = stack_dir / TOKEN_FILE
    stack_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two processes starting at once, exactly one makes the token; 0o600 from the first byte.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return token


def _read(path: Path) -> str:
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise TokenError(f"{path} can be read by others; `chmod 600 {path}`, or delete it to make a new token")
    deadline = time.monotonic() + _WRITER_GRACE_SECONDS
    while not (text := path.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        [token] = checked_tokens([text])
    except ValueError as error:
        raise TokenError(f"{path}: {error}; delete it to make a new token") from None
    return token.get_secret_value()


@dataclass(frozen=True)
class OperatorTokens:
    tokens: tuple[SecretStr, ...]
    source: str  # where they come from, for messages (never the token itself)

    @property
    def current(self) -> str:
        """The one the CLI sends: the first, so during a rotation the new token goes first."""
        return self.tokens[0].get_secret_value()


def operator_tokens(stack_dir: Path | None = None) -> OperatorTokens:
    """FIVECOGS_OPERATOR_TOKENS when set (a deployment's tokens), else the local stack's own token."""
    if value := os.environ.get(OPERATOR_TOKENS_ENV, "").strip():
        try:
            return OperatorTokens(parse_operator_tokens(value), OPERATOR_TOKENS_ENV)
        except ValueError as error:
            raise TokenError(f"{OPERATOR_TOKENS_ENV}: {error}") from None
    if stack_dir is None:
        from fivecogs_ops.stack import LocalStack

        stack_dir = LocalStack().dir
    return OperatorTokens((SecretStr(operator_token(stack_dir)),), str(stack_dir / TOKEN_FILE))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refusal(response: httpx.Response) -> str | None:
    """What to tell the user when a service refused the token (401), else None."""
    if response.status_code != 401:
        return None
    try:
        why = str(response.json().get("error", "unauthorized"))
    except ValueError:
        why = "unauthorized"
    return f"{response.url} answered 401 ({why}): send a token it accepts (FIVECOGS_OPERATOR_TOKENS)"
