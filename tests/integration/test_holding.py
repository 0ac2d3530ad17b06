"""The holding rules of the batch processor, on real Postgres (no broker: records are handed to it directly).

A toy cog: `parent` events make `parent:<id>` known; a `child` needs its parent and awaits it otherwise; a
`grandchild` needs its child. Each applied event is appended to `applied`, so the order of application shows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel

from fivecogs_shared import db
from fivecogs_shared.consumer import BatchProcessor, Handler, Sources
from fivecogs_shared.envelope import Envelope, EventType
from fivecogs_shared.errors import Awaiting
from fivecogs_shared.metrics import ServiceMetrics
from fivecogs_shared.uow import UnitOfWork

pytestmark = pytest.mark.integration

PARTNER = "unit-partner"
TOPIC = f"fivecogs.inputs.ingest.{PARTNER}"
PARENT, CHILD, GRANDCHILD, BOTH = "th.test.parent.v1", "th.test.child.v1", "th.test.grandchild.v1", "th.test.both.v1"


class Body(BaseModel):
    id: str
    parent: str = ""
    other: str = ""


@dataclass(frozen=True)
class ToyType:
    ce_type: str
    key_field: str = "id"
    model: type[BaseModel] = Body
    handled_as: str | None = None
    upcast: None = None


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


async def _apply(uow: UnitOfWork, event: Envelope, kind: str) -> None:
    await uow.conn.execute("INSERT INTO applied (id, kind) VALUES ($1, $2)", event.data_as(Body).id, kind)


async def on_parent(uow: UnitOfWork, event: Envelope) -> None:
    await _apply(uow, event, "parent")
    uow.known(f"parent:{event.data_as(Body).id}")


def _needs(kind: str, needed: str) -> Handler:
    async def handle(uow: UnitOfWork, event: Envelope) -> None:
        body = event.data_as(Body)
        if not await uow.conn.fetchval("SELECT count(*) FROM applied WHERE id = $1 AND kind = $2", body.parent, needed):
            raise Awaiting(f"unknown_{needed}", f"{needed} {body.parent} is not known", f"{needed}:{body.parent}")
        await _apply(uow, event, kind)
        uow.known(f"{kind}:{body.id}")

    return handle


async def on_both(uow: UnitOfWork, event: Envelope) -> None:
    body = event.data_as(Body)
    for needed, of in (("parent", body.parent), ("child", body.other)):
        if not await uow.conn.fetchval("SELECT count(*) FROM applied WHERE id = $1 AND kind = $2", of, needed):
            raise Awaiting(f"unknown_{needed}", f"{needed} {of} is not known", f"{needed}:{of}")
    await _apply(uow, event, "both")


HANDLERS: dict[str, Handler] = {
    PARENT: on_parent,
    CHILD: _needs("child", "parent"),
    GRANDCHILD: _needs("grandchild", "child"),
    BOTH: on_both,
}


@pytest.fixture
async def pool(stack_env, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    schema = f"test_holding_{uuid.uuid4().hex[:8]}"
    pool = await db.create_pool(stack_env.database_url, schema)
    await db.migrate(pool, schema, tmp_path)
    await pool.execute("CREATE TABLE applied (n bigserial, id text, kind text)")
    try:
        yield pool
    finally:
        await pool.close()
        conn = await asyncpg.connect(stack_env.database_url)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


def _processor(pool: asyncpg.Pool, hold_seconds: float = 300.0, hold_room: int = 100) -> BatchProcessor:
    registry: dict[str, EventType] = {t: ToyType(t) for t in HANDLERS}
    return BatchProcessor(
        cog="inputs",
        pool=pool,
        sources=Sources("inputs", registry, {}),
        handlers=HANDLERS,
        metrics=ServiceMetrics(),
        group_id=f"test-holding-{uuid.uuid4().hex[:6]}",
        hold_seconds=hold_seconds,
        hold_room=hold_room,
    )


class Log:
    """Partner records on one partition, offsets in order."""

    def __init__(self) -> None:
        self.offset = 0

    def record(self, ce_type: str, id: str, parent: str = "", other: str = "") -> Record:
        self.offset += 1
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", f"ev-{id}".encode()),
            ("ce_source", f"partner/{PARTNER}".encode()),
            ("ce_type", ce_type.encode()),
            ("ce_time", datetime.now(UTC).isoformat().encode()),
        ]
        value = json.dumps({"id": id, "parent": parent, "other": other}).encode()
        return Record(TOPIC, 0, self.offset, id.encode(), value, headers)


async def _applied(pool: asyncpg.Pool) -> list[str]:
    return [row["id"] for row in await pool.fetch("SELECT id FROM applied ORDER BY n")]


async def _answers(pool: asyncpg.Pool) -> list[tuple[str, str, dict[str, Any]]]:
    """(answer type, answered event id, body) of every feedback record in the outbox, in order."""
    rows = await pool.fetch("SELECT value, header_names, header_values FROM outbox ORDER BY id")
    answers = []
    for row in rows:
        headers = dict(zip(row["header_names"], (bytes(v).decode() for v in row["header_values"]), strict=True))
        body = json.loads(row["value"])
        answers.append((headers["ce_type"].split(".")[-2], body["event_id"], body))
    return answers


async def _outcome(pool: asyncpg.Pool, event_id: str) -> str:
    outcome: str = await pool.fetchval("SELECT outcome FROM inbox WHERE event_id = $1", event_id)
    return outcome


async def test_an_event_before_its_reference_is_held_then_applied_when_the_reference_is(pool) -> None:
    log, processor = Log(), _processor(pool)
    child = log.record(CHILD, "c1", parent="p1")
    await processor.process([child])

    [(awaits, reason)] = [tuple(r) for r in await pool.fetch("SELECT awaits, reason FROM held")]
    assert (awaits, reason) == ("parent:p1", "rule:unknown_parent")
    assert await _outcome(pool, "ev-c1") == "held"
    assert await _applied(pool) == []

    await processor.process([log.record(PARENT, "p1")])

    assert await _applied(pool) == ["p1", "c1"]
    assert await pool.fetchval("SELECT count(*) FROM held") == 0
    assert await _outcome(pool, "ev-c1") == "accepted"
    kinds = [(kind, event_id) for kind, event_id, _ in await _answers(pool)]
    assert kinds == [("held", "ev-c1"), ("accepted", "ev-p1"), ("accepted", "ev-c1")]
    [(_, _, notice)] = [a for a in await _answers(pool) if a[0] == "held"]
    assert notice["awaits"] == "parent:p1"
    assert datetime.fromisoformat(notice["until"]) > datetime.now(UTC)


async def test_held_events_are_applied_in_the_order_they_arrived_and_in_cascade(pool) -> None:
    log, processor = Log(), _processor(pool)
    # In one batch and across batches, ahead of what they need: a grandchild before its child before the parent.
    await processor.process([log.record(GRANDCHILD, "g1", parent="c2"), log.record(CHILD, "c3", parent="p1")])
    await processor.process([log.record(CHILD, "c2", parent="p1"), log.record(CHILD, "c4", parent="p1")])
    assert await _applied(pool) == []

    await processor.process([log.record(PARENT, "p1")])

    assert await _applied(pool) == ["p1", "c3", "c2", "c4", "g1"]
    assert await pool.fetchval("SELECT count(*) FROM held") == 0


async def test_a_reference_in_the_same_batch_releases_what_came_before_it(pool) -> None:
    log, processor = Log(), _processor(pool)
    await processor.process([log.record(CHILD, "c1", parent="p1"), log.record(PARENT, "p1")])
    assert await _applied(pool) == ["p1", "c1"]
    assert [k for k, e, _ in await _answers(pool)] == ["held", "accepted", "accepted"]


async def test_a_held_event_redelivered_is_a_duplicate_not_a_second_hold(pool) -> None:
    log, processor = Log(), _processor(pool)
    child = log.record(CHILD, "c1", parent="p1")
    await processor.process([child])
    await processor.process([child])  # the offset was not committed before a crash: Kafka delivers it again
    resent = log.record(CHILD, "c1", parent="p1")  # the partner sends the same event again
    await processor.process([resent])
    assert await pool.fetchval("SELECT count(*) FROM held") == 1
    await processor.process([log.record(PARENT, "p1")])
    assert await _applied(pool) == ["p1", "c1"]
    assert [k for k, e, _ in await _answers(pool) if e == "ev-c1"] == ["held", "accepted"]


async def test_a_wait_that_expires_is_rejected_once_with_its_reason(pool) -> None:
    log, processor = Log(), _processor(pool, hold_seconds=0.05)
    await processor.process([log.record(CHILD, "c1", parent="p1")])
    await pool.execute("SELECT pg_sleep(0.1)")

    assert await processor.expire_held() == 1
    assert await processor.expire_held() == 0
    await processor.process([log.record(PARENT, "p1")])  # too late: the child stays rejected

    assert await _applied(pool) == ["p1"]
    answers = [(k, e, b.get("reason")) for k, e, b in await _answers(pool) if e == "ev-c1"]
    assert answers == [("held", "ev-c1", "rule:unknown_parent"), ("rejected", "ev-c1", "rule:unknown_parent")]
    assert await _outcome(pool, "ev-c1") == "rule:unknown_parent"


async def test_a_wait_not_yet_over_is_not_expired(pool) -> None:
    log, processor = Log(), _processor(pool, hold_seconds=300)
    await processor.process([log.record(CHILD, "c1", parent="p1")])
    assert await processor.expire_held() == 0
    assert [k for k, _, _ in await _answers(pool)] == ["held"]


async def test_released_but_waiting_for_something_else_it_keeps_its_place_and_expiry(pool) -> None:
    log, processor = Log(), _processor(pool)
    await processor.process([log.record(BOTH, "b1", parent="p1", other="c1")])  # needs parent p1, then child c1
    before = await pool.fetchrow("SELECT seq, awaits, expires_at FROM held")
    await processor.process([log.record(PARENT, "p1")])

    after = await pool.fetchrow("SELECT seq, awaits, expires_at FROM held")
    assert before["awaits"] == "parent:p1"
    assert after["awaits"] == "child:c1"
    assert (after["seq"], after["expires_at"]) == (before["seq"], before["expires_at"])

    await processor.process([log.record(CHILD, "c1", parent="p1")])
    assert await _applied(pool) == ["p1", "c1", "b1"]
    assert [k for k, e, _ in await _answers(pool) if e == "ev-b1"] == ["held", "accepted"]  # one notice, one outcome


async def test_a_partner_flooding_references_to_nothing_cannot_hold_more_than_its_room(pool) -> None:
    log, processor = Log(), _processor(pool, hold_room=3)
    await processor.process([log.record(CHILD, f"c{n}", parent="nobody") for n in range(5)])

    assert await pool.fetchval("SELECT count(*) FROM held") == 3
    answers = [(k, e, b.get("reason")) for k, e, b in await _answers(pool)]
    assert answers == [("held", f"ev-c{n}", "rule:unknown_parent") for n in range(3)] + [
        ("rejected", f"ev-c{n}", "rule:unknown_parent") for n in (3, 4)
    ]
    assert [await _outcome(pool, f"ev-c{n}") for n in range(5)] == ["held"] * 3 + ["rule:unknown_parent"] * 2
    await processor.process([log.record(PARENT, "nobody")])  # room was kept for what waits: those apply
    assert await _applied(pool) == ["nobody", "c0", "c1", "c2"]


async def test_a_rebuild_from_the_same_log_gives_the_same_state_and_the_same_answers(pool) -> None:
    log = Log()
    records = [
        log.record(GRANDCHILD, "g1", parent="c1"),
        log.record(CHILD, "c1", parent="p1"),
        log.record(CHILD, "c2", parent="p1"),
        log.record(PARENT, "p1"),
    ]

    async def run() -> tuple[list[str], list[str]]:
        processor = _processor(pool)
        for record in records:  # one batch each, as a slow consumer would see them
            await processor.process([record])
        rows = await pool.fetch("SELECT header_names, header_values FROM outbox ORDER BY id")
        ids = [bytes(r["header_values"][r["header_names"].index("ce_id")]).decode() for r in rows]
        return await _applied(pool), ids

    first = await run()
    await pool.execute("TRUNCATE applied, inbox, held, outbox")  # what `fivecogs replay` empties
    assert await run() == first
    assert first[0] == ["p1", "c1", "c2", "g1"]


async def _waiting_on(pool: asyncpg.Pool, locktype: str, count: int = 1) -> None:
    """Until `count` backends wait for a lock of this type (`relation`: the outbox; `advisory`: a reference)."""
    query = "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = $1"
    for _ in range(600):
        if await pool.fetchval(query, locktype) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no backend waits for a {locktype} lock")


async def test_a_reference_made_known_while_its_dependant_is_being_held_elsewhere_is_not_missed(pool) -> None:
    """Two partitions, two transactions: the parent's has looked for held children and not committed yet when
    the child's finds no parent. Without the reference's lock the child would be held after its parent's last
    look, and wait for nothing until it expired."""
    log = Log()
    parent, child = log.record(PARENT, "p1"), log.record(CHILD, "c1", parent="p1")
    child = Record(TOPIC, 1, child.offset, child.key, child.value, child.headers)  # another partition
    async with pool.acquire() as gate:
        async with gate.transaction():
            await gate.execute("LOCK TABLE outbox IN EXCLUSIVE MODE")  # the parent's answer cannot be written yet
            providing = asyncio.create_task(_processor(pool).process([parent]))
            await _waiting_on(pool, "relation")  # the parent is applied, its held children looked for: none
            holding_it = asyncio.create_task(_processor(pool).process([child]))
            await _waiting_on(pool, "advisory")  # the child found no parent, and waits for the reference's lock
        await asyncio.gather(providing, holding_it)

    assert await _applied(pool) == ["p1", "c1"]
    assert await pool.fetchval("SELECT count(*) FROM held") == 0
