"""The HTTP endpoints every service has: /healthz (alive), /readyz (can do its work), /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from fivecogs_shared import outbox

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
