"""Held events: what an event that arrived before its reference becomes until the reference is applied.

The record is kept whole, as it arrived, in the transaction that read it (its offset is committed after that,
like any other's): nothing is lost, and the inbox already knows it, so a redelivery is a duplicate. Rows are
taken in arrival order (`seq`), with a row lock, so two processes never apply one held event twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from fivecogs_shared import inbox
from fivecogs_shared.db import Connection
from fivecogs_shared.envelope import Envelope, Headers, RecordLike
from fivecogs_shared.errors import Awaiting
from fivecogs_shared.inbox import EventKey

_COLUMNS = (
    'seq, source, event_id, awaits, reason, topic, "partition", "offset", key, value, header_names, header_values'
)


@dataclass(frozen=True)
class HeldRecord:
    """A held event as the record it arrived as: the batch processor reads it again exactly as the first time."""

    seq: int
    source: str
    event_id: str
    awaits: str
    reason: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers

    @classmethod
    def of(cls, row: asyncpg.Record) -> HeldRecord:
        headers = tuple(zip(row["header_names"], (bytes(v) for v in row["header_values"]), strict=True))
        return cls(
            seq=row["seq"],
            source=row["source"],
            event_id=row["event_id"],
            awaits=row["awaits"],
            reason=row["reason"],
            topic=row["topic"],
            partition=row["partition"],
            offset=row["offset"],
            key=bytes(row["key"]) if row["key"] is not None else None,
            value=bytes(row["value"]),
            headers=headers,
        )


@dataclass
class Settling:
    """What one transaction does to held events, written together before it commits (`flush`). While a batch
    runs, `awaited` is every reference a held event awaits, so that only those are looked up as they become
    known; the others (`unchecked`) are looked up at the end, in one query."""

    awaited: set[str] | None = None  # None: unknown, look up every reference as it becomes known
    unchecked: set[str] = field(default_factory=set)
    released: set[int] = field(default_factory=set)  # seq of the held rows settled here
    outcomes: dict[EventKey, str] = field(default_factory=dict)  # their inbox outcomes
    failed: set[EventKey] = field(default_factory=set)  # released but dead-lettered: out of the inbox

    def awaits(self, reference: str) -> None:
        if self.awaited is not None:
            self.awaited.add(reference)

    def settled(self, held: HeldRecord, outcome: str | None) -> None:
        """The held event is done with: applied or rejected (its outcome), or dead-lettered (None)."""
        self.released.add(held.seq)
        key = (held.source, held.event_id)
        if outcome is None:
            self.failed.add(key)
        else:
            self.outcomes[key] = outcome

    async def flush(self, conn: Connection) -> None:
        """After the batch's inbox entries (a held event may be settled in the batch that held it)."""
        await release(conn, sorted(self.released))
        await inbox.settle(conn, self.outcomes)
        await inbox.forget(conn, self.failed)


@dataclass(frozen=True)
class HeldSummary:
    reason: str
    count: int
    oldest_seconds: float


async def hold(
    conn: Connection, record: RecordLike, event: Envelope, waiting: Awaiting, seconds: float, room: int
) -> datetime | None:
    """Keep the event until its reference is applied or `seconds` pass; returns when the wait expires. None when
    `room` events of its topic wait already: a partner flooding references to nothing cannot fill the table."""
    headers = list(record.headers or ())
    expires: datetime | None = await conn.fetchval(
        'INSERT INTO held (source, event_id, event_type, awaits, reason, detail, topic, "partition", "offset", '
        "key, value, header_names, header_values, expires_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
        "$12, $13, now() + make_interval(secs => $14) "
        "WHERE (SELECT count(*) FROM (SELECT 1 FROM held WHERE topic = $7 LIMIT $15) AS waiting) < $15 "
        "RETURNING expires_at",
        event.source,
        event.id,
        event.type,
        waiting.awaits,
        waiting.reason,
        waiting.detail,
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value or b"",
        [name for name, _ in headers],
        [value for _, value in headers],
        seconds,
        room,
    )
    return expires


async def awaiting(conn: Connection, references: Sequence[str]) -> list[HeldRecord]:
    """The events held for any of these references, locked, in arrival order. Waits for a row another
    transaction holds: when it commits, the row it applied is gone and is not returned."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM held WHERE awaits = ANY($1::text[]) ORDER BY seq FOR UPDATE", list(references)
    )
    return [HeldRecord.of(row) for row in rows]


async def awaited(conn: Connection) -> set[str]:
    """Every reference some held event awaits now: a batch looks up held events only for these as it goes."""
    return {row["awaits"] for row in await conn.fetch("SELECT DISTINCT awaits FROM held")}


async def expired(conn: Connection, limit: int) -> list[HeldRecord]:
    """Held events whose wait is over, oldest first; rows another process is applying are skipped."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM held WHERE expires_at <= now() ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED", limit
    )
    return [HeldRecord.of(row) for row in rows]


async def wait_again(conn: Connection, seq: int, waiting: Awaiting) -> None:
    """Released, but it now waits for something else (a listing knew its enterprise, not yet its product): it
    keeps its place in the arrival order and its original expiry."""
    await conn.execute(
        "UPDATE held SET awaits = $2, reason = $3, detail = $4 WHERE seq = $1",
        seq,
        waiting.awaits,
        waiting.reason,
        waiting.detail,
    )


async def release(conn: Connection, seqs: Sequence[int]) -> None:
    if seqs:
        await conn.execute("DELETE FROM held WHERE seq = ANY($1::bigint[])", list(seqs))


async def summary(conn: Connection) -> list[HeldSummary]:
    """How many events are held, and for how long the oldest has waited, by reason."""
    rows = await conn.fetch(
        "SELECT reason, count(*) AS count, extract(epoch FROM now() - min(held_at))::float8 AS oldest "
        "FROM held GROUP BY reason ORDER BY reason"
    )
    return [HeldSummary(row["reason"], row["count"], row["oldest"]) for row in rows]
