"""The inbox: which events this service has already taken in, so a redelivery has no second effect."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from fivecogs_shared.db import Connection
from fivecogs_shared.envelope import Envelope

EventKey = tuple[str, str]  # (source, event id)


@dataclass(frozen=True)
class InboxEntry:
    source: str
    event_id: str
    event_type: str
    digest: bytes
    outcome: str

    @classmethod
    def of(cls, envelope: Envelope, outcome: str) -> InboxEntry:
        return cls(envelope.source, envelope.id, envelope.type, envelope.digest, outcome)


async def digests_seen(conn: Connection, keys: Iterable[EventKey]) -> dict[EventKey, bytes]:
    """One query for a whole batch: the digest of every (source, id) already in the inbox."""
    pairs = list(set(keys))
    if not pairs:
        return {}
    rows = await conn.fetch(
        "SELECT i.source, i.event_id, i.digest FROM inbox i "
        "JOIN unnest($1::text[], $2::text[]) AS k(source, event_id) USING (source, event_id)",
        [source for source, _ in pairs],
        [event_id for _, event_id in pairs],
    )
    return {(row["source"], row["event_id"]): bytes(row["digest"]) for row in rows}


async def record(conn: Connection, entries: list[InboxEntry]) -> None:
    if not entries:
        return
    await conn.copy_records_to_table(
        "inbox",
        records=[(e.source, e.event_id, e.event_type, e.digest, e.outcome) for e in entries],
        columns=_COLUMNS,
    )


_COLUMNS = ("source", "event_id", "event_type", "digest", "outcome")


async def settle(conn: Connection, outcomes: Mapping[EventKey, str]) -> None:
    """Held events' final outcomes, once they were applied or their wait expired."""
    if outcomes:
        await conn.executemany(
            "UPDATE inbox SET outcome = $3 WHERE source = $1 AND event_id = $2",
            [(source, event_id, outcome) for (source, event_id), outcome in outcomes.items()],
        )


async def forget(conn: Connection, keys: Collection[EventKey]) -> None:
    """Held events that failed when released are dead-lettered: a replay from the DLQ may apply them later."""
    if keys:
        await conn.execute(
            "DELETE FROM inbox i USING unnest($1::text[], $2::text[]) AS k(source, event_id) "
            "WHERE i.source = k.source AND i.event_id = k.event_id",
            [source for source, _ in keys],
            [event_id for _, event_id in keys],
        )
