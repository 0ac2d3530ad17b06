"""The HTTP endpoints every service has: /healthz (alive), /readyz (can do its work), /metrics (Prometheus), and
the bearer-token check in front of everything else (`BearerAuth`), which the ops page server uses too."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from fivecogs_shared import outbox
from fivecogs_shared.settings import OPERATOR_TOKENS_ENV

if TYPE_CHECKING:
    from fivecogs_shared.service import Runtime


def health_routes(runtime: Runtime) -> list[BaseRoute]:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "service": runtime.settings.cog})

    async def readyz(_: Request) -> Response:
        stalled = runtime.processor.health.stalled()
        checks = {
            "broker": await runtime.broker.ping(timeout=2.0),
            "database": await _database_answers(runtime),
            "partitions_assigned": _owns_its_share(runtime),
            "partitions_flowing": not stalled,
        }
        ready = all(checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks, "stalled": stalled}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        runtime.processor.health.stalled()  # brings fivecogs_partition_stalled up to date
        try:
            async with runtime.pool.acquire(timeout=2.0) as conn:
                rows, age = await outbox.backlog(conn)
                parked = await outbox.parked(conn)
            runtime.metrics.outbox_parked_rows.set(parked)
            runtime.metrics.outbox_backlog.set(rows)
            runtime.metrics.outbox_oldest_seconds.set(age)
        except (OSError, TimeoutError):
            pass  # the database is down: report the last values and let /readyz say why
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]


def _owns_its_share(runtime: Runtime) -> bool:
    """Some partitions are this member's, or there is nothing to own yet: its pattern matches no topic (inputs
    before any partner is provisioned), which is not a fault."""
    if runtime.assignment.assigned:
        return True
    consumers = [getattr(s, "consumer", None) for s in runtime.broker.subscribers]
    return runtime.assignment.joined and not any(c.subscription() for c in consumers if c is not None)


async def _database_answers(runtime: Runtime) -> bool:
    try:
        async with runtime.pool.acquire(timeout=2.0) as conn:
            return bool(await asyncio.wait_for(conn.fetchval("SELECT 1"), 2.0) == 1)
    except Exception:
        return False


# Probes and scrapers carry no token: what these answer (alive, ready, counters) is no operator data.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
MISSING = "missing bearer token"
INVALID = "invalid bearer token"
LOCKED = f"no operator token is configured ({OPERATOR_TOKENS_ENV}): every protected route is locked"


def token_matches(presented: bytes, tokens: Sequence[SecretStr]) -> bool:
    """Whether `presented` is one of `tokens`, in a time that tells neither which one nor how much of it matched."""
    # Digests have one length, so compare_digest does not return early on a shorter or longer guess.
    digest = hashlib.sha256(presented).digest()
    matched = False
    for token in tokens:  # every token, no early exit
        expected = hashlib.sha256(token.get_secret_value().encode()).digest()
        matched |= hmac.compare_digest(digest, expected)
    return matched


def authorization_error(headers: Sequence[bytes], tokens: Sequence[SecretStr]) -> str | None:
    """Why a request with these Authorization header values may not pass; None when it may.

    The scheme is case-insensitive (RFC 7235 §2.1, which RFC 6750 builds on): `bearer x` is `Bearer x`."""
    if not tokens:
        return LOCKED  # fail closed: a service nobody configured is not an open one
    if len(headers) > 1:
        return INVALID  # which one would a proxy in front of us have read?
    scheme, _, credentials = (headers[0] if headers else b"").strip().partition(b" ")
    if scheme.lower() != b"bearer" or not credentials.strip():
        return MISSING
    return None if token_matches(credentials.strip(), tokens) else INVALID


class BearerAuth:
    """ASGI middleware: every request except to `open_paths` must carry `Authorization: Bearer <one of tokens>`,
    else 401 before any route runs (an unknown path too, so the routes cannot be probed without a token)."""

    def __init__(self, app: ASGIApp, tokens: Sequence[SecretStr], open_paths: Collection[str] = OPEN_PATHS) -> None:
        self.app = app
        self.tokens = tuple(tokens)
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or (scope["type"] == "http" and scope["path"] in self.open_paths):
            await self.app(scope, receive, send)
            return
        values = [value for name, value in scope["headers"] if name == b"authorization"]
        error = authorization_error(values, self.tokens)
        if error is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # policy violation; no body to explain in
        else:
            await unauthorized(error)(scope, receive, send)


def unauthorized(error: str) -> Response:
    """401 saying why, never with the token that was sent."""
    challenge = 'Bearer realm="fivecogs"' + (', error="invalid_token"' if error == INVALID else "")
    return JSONResponse({"error": error}, status_code=401, headers={"WWW-Authenticate": challenge})
