"""Held events as an operator sees them: what each service keeps in its `held` table, waiting for a reference
(`awaits`, e.g. "enterprise:E1") to be applied, until `expires_at`.

Reads only, through DATABASE_URL, each service's own schema (the cog's name, or FIVECOGS_<COG>_DB_SCHEMA as the
service itself reads it). Ages are Postgres's (`now()`), the clock the services hold and expire by.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from fivecogs_shared.contracts import COGS

HELD_SHOWN = 200  # events listed per service, the oldest first; counts are always the whole
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class ServiceSchema:
    service: str
    schema: str


def service_schemas(cogs: Sequence[str] = COGS, environ: Mapping[str, str] = os.environ) -> tuple[ServiceSchema, ...]:
    """Where each service keeps its tables: FIVECOGS_<COG>_DB_SCHEMA when set (the variable the service reads),
    else the cog's name."""
    return tuple(ServiceSchema(cog, environ.get(f"FIVECOGS_{cog.upper()}_DB_SCHEMA") or cog) for cog in cogs)


def reason_filter(reason: str | None) -> str | None:
    """`--reason unknown_enterprise` means `rule:unknown_enterprise`, the reason as stored."""
    if reason is None or ":" in reason:
        return reason
    return f"rule:{reason}"


@dataclass(frozen=True)
class ReasonSummary:
    reason: str
    count: int
    oldest_seconds: float
    expires_in_seconds: float | None = None  # the soonest end of a wait; negative: past it, not rejected yet


@dataclass(frozen=True)
class HeldEvent:
    seq: int
    reason: str
    awaits: str
    source: str
    event_id: str
    event_type: str
    detail: str
    topic: str
    partition: int
    offset: int
    held_at: datetime
    expires_at: datetime
    held_seconds: float
    expires_in_seconds: float  # negative: the wait is over and the service has not rejected it yet (is it running?)


@dataclass(frozen=True)
class ServiceHeld:
    service: str
    schema: str
    count: int | None  # None: no `held` table (the service has not started since migration 003_held)
    by_reason: list[ReasonSummary] = field(default_factory=list)
    events: list[HeldEvent] = field(default_factory=list)  # the oldest `limit`

    @property
    def oldest_seconds(self) -> float | None:
        return max((r.oldest_seconds for r in self.by_reason), default=None)


async def held_events(
    dsn: str,
    services: Sequence[ServiceSchema],
    *,
    reason: str | None = None,
    limit: int = HELD_SHOWN,
    timeout: float = 5.0,
) -> list[ServiceHeld]:
    """Every service's held events (the oldest `limit` of them; 0 for the summary by reason alone)."""
    for s in services:
        if not _SCHEMA_NAME.match(s.schema):
            raise ValueError(f"unsafe schema name {s.schema!r}")
    conn = await asyncio.wait_for(asyncpg.connect(dsn), timeout)
    try:
        async with conn.transaction(readonly=True):  # one snapshot: counts and rows agree
            return [await _service(conn, s, reason, limit, timeout) for s in services]
    finally:
        await conn.close()


async def _service(
    conn: asyncpg.Connection, s: ServiceSchema, reason: str | None, limit: int, timeout: float
) -> ServiceHeld:
    if not await conn.fetchval("SELECT to_regclass($1)", f"{s.schema}.held"):
        return ServiceHeld(s.service, s.schema, None)
    where = "WHERE reason = $1" if reason is not None else "WHERE $1::text IS NULL"
    summary = await conn.fetch(
        "SELECT reason, count(*) AS n, extract(epoch FROM now() - min(held_at))::float8 AS oldest, "
        "extract(epoch FROM min(expires_at) - now())::float8 AS expires_in "
        f"FROM {s.schema}.held {where} GROUP BY reason ORDER BY reason",
        reason,
        timeout=timeout,
    )
    by_reason = [ReasonSummary(r["reason"], int(r["n"]), r["oldest"], r["expires_in"]) for r in summary]
    rows = []
    if limit > 0:
        rows = await conn.fetch(
            'SELECT seq, reason, awaits, source, event_id, event_type, detail, topic, "partition", "offset", '
            "held_at, expires_at, extract(epoch FROM now() - held_at)::float8 AS held_seconds, "
            "extract(epoch FROM expires_at - now())::float8 AS expires_in_seconds "
            f"FROM {s.schema}.held {where} ORDER BY seq LIMIT $2",
            reason,
            limit,
            timeout=timeout,
        )
    events = [HeldEvent(**dict(row)) for row in rows]
    return ServiceHeld(s.service, s.schema, sum(r.count for r in by_reason), by_reason, events)


def held_json(found: Sequence[ServiceHeld]) -> dict[str, Any]:
    """What `fivecogs held list --json` prints."""
    return {
        "count": sum(s.count or 0 for s in found),
        "services": [
            {
                "service": s.service,
                "schema": s.schema,
                "count": s.count,
                "oldest_seconds": s.oldest_seconds,
                "by_reason": [
                    {"reason": r.reason, "count": r.count, "oldest_seconds": r.oldest_seconds} for r in s.by_reason
                ],
                "shown": len(s.events),
                "events": [_event_json(s.service, e) for e in s.events],
            }
            for s in found
        ],
    }


def _event_json(service: str, e: HeldEvent) -> dict[str, Any]:
    return {
        "service": service,
        "reason": e.reason,
        "awaits": e.awaits,
        "source": e.source,
        "event_id": e.event_id,
        "event_type": e.event_type,
        "detail": e.detail,
        "topic": e.topic,
        "partition": e.partition,
        "offset": e.offset,
        "held_at": e.held_at.isoformat(),
        "expires_at": e.expires_at.isoformat(),
        "held_seconds": e.held_seconds,
        "expires_in_seconds": e.expires_in_seconds,
    }


def page_json(found: Sequence[ServiceHeld]) -> list[dict[str, Any]]:
    """What the ops page shows: per service, how many, the oldest age and the soonest end of a wait by reason."""
    return [
        {
            "service": s.service,
            "schema": s.schema,
            "count": s.count,
            "by_reason": [
                {
                    "reason": r.reason,
                    "count": r.count,
                    "oldest_seconds": r.oldest_seconds,
                    "expires_in_seconds": r.expires_in_seconds,
                }
                for r in s.by_reason
            ],
        }
        for s in found
    ]
