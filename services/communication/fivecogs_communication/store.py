"""SQL of the communication service (schema `communication`): subscribers, notices and webhook deliveries; what
a batch reads and adds is kept in `CommunicationState` and written set-wise at its end."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from fivecogs_communication.domain import Notice, Subscriber
from fivecogs_shared.batchstate import Tables, named
from fivecogs_shared.db import Connection
from fivecogs_shared.envelope import Envelope

SUBSCRIBERS, AUDIENCES, NOTICES, WEBHOOKS = "subscribers", "audiences", "notices", "webhooks"
_SUBSCRIBER_COLUMNS = "subscriber_id, network, provinces, topics, webhook_url, owner"


class CommunicationState(Tables):
    """Subscribers by id (locked: the owner cannot change under the check), the candidates for each topic and
    province, which notices exist, and the notices and webhook deliveries this batch adds."""

    locked = frozenset({SUBSCRIBERS})

    async def prefetch(self, events: Sequence[Envelope]) -> None:
        await self._load_subscribers(named(events, "subscriber_id"))

    async def subscriber(self, subscriber_id: str) -> Subscriber | None:
        await self._load_subscribers([subscriber_id])
        found: Subscriber | None = self.get(SUBSCRIBERS, subscriber_id)
        return found

    def save_subscriber(self, s: Subscriber) -> None:
        self.put(SUBSCRIBERS, s.subscriber_id, s)

    async def subscribers_for(self, topic: str, province: str) -> list[Subscriber]:
        """The candidates (the domain decides who matches): Postgres's, once per topic and province, with this
        batch's subscriptions in their latest form."""
        if not self.knows(AUDIENCES, (topic, province)):
            rows = await self.conn.fetch(
                f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE topics @> ARRAY[$1::text] "
                "AND (cardinality(provinces) = 0 OR $2 = ANY(provinces))",
                topic,
                province,
            )
            self.loaded(AUDIENCES, {(topic, province): tuple(_subscriber(row) for row in rows)})
        candidates = {s.subscriber_id: s for s in self.get(AUDIENCES, (topic, province))}
        candidates |= {s.subscriber_id: s for s in self.changed(SUBSCRIBERS)}
        return [candidates[sid] for sid in sorted(candidates)]

    async def save_new_notices(self, notices: Sequence[Notice]) -> list[Notice]:
        """Keep the notices not stored before and return them: a notice already published is not published
        again, whether or not the inbox recognised its event."""
        sql = "SELECT notice_id FROM notices WHERE notice_id = ANY($1::text[])"
        await self.fetch_missing(NOTICES, [n.notice_id for n in notices], sql, "notice_id")
        fresh = [n for n in notices if self.get(NOTICES, n.notice_id) is None]
        for n in fresh:
            self.put(NOTICES, n.notice_id, n)
        return fresh

    def queue_webhooks(self, deliveries: Sequence[tuple[Notice, bytes]]) -> None:
        for n, body in deliveries:
            if n.webhook_url:
                self.put(WEBHOOKS, n.notice_id, (n.notice_id, n.subscriber_id, n.webhook_url, body))

    async def _load_subscribers(self, ids: Iterable[str]) -> None:
        sql = (
            f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE subscriber_id = ANY($1::text[]) "
            "ORDER BY subscriber_id FOR UPDATE"
        )
        await self.fetch_missing(SUBSCRIBERS, ids, sql, "subscriber_id", _subscriber)

    async def flush(self) -> None:
        """Subscribers before the notices and deliveries that name them."""
        subscribers = [_subscriber_row(s) for s in self.changed(SUBSCRIBERS)]
        await self.write(_SAVE_SUBSCRIBER, subscribers)
        await self.write(_ADD_NOTICE, [_notice_row(n) for n in self.changed(NOTICES)])
        await self.write(_QUEUE_WEBHOOK, self.changed(WEBHOOKS))
        self.written()


def _subscriber(row: asyncpg.Record) -> Subscriber:
    return Subscriber(
        subscriber_id=row["subscriber_id"],
        network=row["network"],
        provinces=tuple(row["provinces"]),
        topics=tuple(row["topics"]),
        webhook_url=row["webhook_url"],
        owner=row["owner"],
    )


def _subscriber_row(s: Subscriber) -> tuple[object, ...]:
    return (s.subscriber_id, s.network, list(s.provinces), list(s.topics), s.webhook_url, s.owner)


def _notice_row(n: Notice) -> tuple[object, ...]:
    return (
        n.notice_id,
        n.subscriber_id,
        n.network,
        n.topic,
        n.province,
        n.subject_id,
        n.subject_event_id,
        list(n.product_ids),
        n.summary,
    )


# The owner never changes: a row of another owner is left as it is (the domain refused that case already).
_SAVE_SUBSCRIBER = (
    f"INSERT INTO subscribers ({_SUBSCRIBER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) "
    "ON CONFLICT (subscriber_id) DO UPDATE SET network = EXCLUDED.network, provinces = EXCLUDED.provinces, "
    "topics = EXCLUDED.topics, webhook_url = EXCLUDED.webhook_url, subscribed_at = now() "
    "WHERE subscribers.owner = EXCLUDED.owner"
)
_ADD_NOTICE = (
    "INSERT INTO notices (notice_id, subscriber_id, network, topic, province, subject_id, subject_event_id, "
    "product_ids, summary) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
_QUEUE_WEBHOOK = (
    "INSERT INTO webhook_deliveries (notice_id, subscriber_id, url, body) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (notice_id) DO NOTHING"
)


# --- the webhook worker ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueDelivery:
    notice_id: str
    subscriber_id: str
    url: str
    body: bytes
    attempts: int  # made before this one


@dataclass(frozen=True)
class Attempt:
    notice_id: str
    number: int
    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    outcome: str  # 'delivered', 'pending' (to retry) or 'failed' (given up)
    retry_in_seconds: float


# The oldest due delivery of each subscriber that has no lease running (no attempt in flight anywhere), oldest
# first. A subscriber whose lease another worker holds is skipped; one whose oldest delivery another worker is
# claiming right now is skipped too (SKIP LOCKED on that same row), so concurrent claims cannot pair up either.
_CLAIM = """
WITH busy AS (
    SELECT DISTINCT subscriber_id FROM webhook_deliveries WHERE leased_until > now()
), first_due AS (
    SELECT DISTINCT ON (subscriber_id) notice_id, next_attempt_at FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now() AND subscriber_id NOT IN (SELECT subscriber_id FROM busy)
    ORDER BY subscriber_id, next_attempt_at
), claimed AS (
    SELECT d.notice_id FROM webhook_deliveries d JOIN first_due f USING (notice_id)
    WHERE d.status = 'pending' AND d.next_attempt_at <= now()
    ORDER BY f.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET next_attempt_at = now() + make_interval(secs => $2), leased_until = now() + make_interval(secs => $2)
FROM claimed WHERE d.notice_id = claimed.notice_id
RETURNING d.notice_id, d.subscriber_id, d.url, d.body, d.attempts
"""


async def claim_due(conn: Connection, limit: int, lease_seconds: float) -> list[DueDelivery]:
    """Take due deliveries for this worker, at most one per subscriber and none of a subscriber with an attempt
    in flight: the lease (`next_attempt_at` and `leased_until` pushed past it) hides them from other workers
    while the POSTs run outside any transaction, and brings them back if this worker dies."""
    rows = await conn.fetch(_CLAIM, limit, lease_seconds)
    return [DueDelivery(r["notice_id"], r["subscriber_id"], r["url"], bytes(r["body"]), r["attempts"]) for r in rows]


async def record_attempt(conn: Connection, a: Attempt) -> None:
    """Record one attempt and end its lease, in one transaction."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO webhook_attempts (notice_id, attempt, attempted_at, duration_ms, status_code, error) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (notice_id, attempt) DO NOTHING",
            a.notice_id,
            a.number,
            a.attempted_at,
            a.duration_ms,
            a.status_code,
            a.error,
        )
        # `attempts = number - 1`: a worker whose lease ran out does not overwrite the one that took over.
        await conn.execute(
            "UPDATE webhook_deliveries SET attempts = $2, status = $3, last_status_code = $4, last_error = $5, "
            "next_attempt_at = now() + make_interval(secs => $6), leased_until = NULL, "
            "finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END "
            "WHERE notice_id = $1 AND attempts = $2 - 1",
            a.notice_id,
            a.number,
            a.outcome,
            a.status_code,
            a.error,
            a.retry_in_seconds,
        )
