"""Hostile partners on the real broker and database: no record stops a partition.

Every hostile record is followed on its own key (so on its partition) by a valid one: the valid one must be
applied, the hostile one must be in the DLQ with its kind, the group must reach the end of the topic and the
outbox must empty. Then the two ways a partition can still stop: a batch that fails as a whole (halved until
the record behind it is found) and an infrastructure error that never clears (retried, and reported stalled).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiokafka.partitioner import murmur2

from fivecogs_communication.app import DEFINITION as COMMUNICATION
from fivecogs_inputs.app import DEFINITION as INPUTS
from fivecogs_ops.lag.report import look
from fivecogs_ops.lag.rules import Status
from fivecogs_ops.lag.store import SampleStore
from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts import events_topic
from fivecogs_shared.service import Runtime, http_app
from fivecogs_shared.uow import OutgoingRecord, UnitOfWork
from tests.integration.test_lag import enterprise, only, start_at_end
from tests.support import (
    FEEDBACK,
    PARTNER,
    RAW_HEADER_NAME_PRODUCER,
    Partner,
    Tap,
    ce_headers,
    data,
    header,
    ingest,
    wait_caught_up,
)

pytestmark = pytest.mark.integration

LAG_WINDOW = 4.0  # seconds: the lag rules' window, short so that a stall shows within the test

REGISTERED = "th.fivecogs.enterprise.registered.v1"
SUBSCRIBED = "th.fivecogs.subscription.created.v1"
BROKER_LIMIT = 1024 * 1024  # the ingest topics' max.message.bytes
Headers = list[tuple[str, bytes]]


def _enterprise(enterprise_id: str, **changes: Any) -> bytes:
    return json.dumps(enterprise(enterprise_id) | changes).encode()


def _members(enterprise_id: str, literal: bytes) -> bytes:
    """A registration whose member count is the raw JSON `literal`."""
    return _enterprise(enterprise_id).replace(b'"members": 12', b'"members": ' + literal)


def _replace(headers: Headers, **changes: bytes | None) -> Headers:
    kept = [(name, value) for name, value in headers if name not in changes]
    return kept + [(name, value) for name, value in changes.items() if value is not None]


# name -> (the hostile value and headers for key k, given valid headers; the kind its dead letter must have)
Make = Callable[[str, Headers], tuple[bytes | None, Headers]]
CORPUS: dict[str, tuple[Make, str]] = {
    "not JSON": (lambda k, h: (b"{not json", h), "malformed"),
    "nested 100,000 deep": (lambda k, h: (b"[" * 100_000 + b"]" * 100_000, h), "malformed"),
    "a 5,000-digit integer": (lambda k, h: (_members(k, b"9" * 5000), h), "malformed"),
    "NUL in ce_id": (lambda k, h: (_enterprise(k), _replace(h, ce_id=b"evt\x00" + k.encode())), "malformed"),
    "NUL in a string": (lambda k, h: (_enterprise(k, name="B\u0000n"), h), "malformed"),
    "an empty value": (lambda k, h: (b"", h), "malformed"),
    "a null value": (lambda k, h: (None, h), "malformed"),
    "JSON null": (lambda k, h: (b"null", h), "schema"),
    "a top-level array": (lambda k, h: (b"[" + _enterprise(k) + b"]", h), "schema"),
    "a top-level number": (lambda k, h: (b"42", h), "schema"),
    "NaN": (lambda k, h: (_members(k, b"NaN"), h), "malformed"),
    "1e400": (lambda k, h: (_members(k, b"1e400"), h), "malformed"),
    "a lone surrogate": (lambda k, h: (_enterprise(k).replace(b"Ban", b"\\udc00"), h), "malformed"),
    "not UTF-8": (lambda k, h: (_enterprise(k).replace(b"Ban", b"B\xc3\x28n"), h), "malformed"),
    "a huge header": (lambda k, h: (_enterprise(k), [*h, ("x-trace", b"t" * 60_000)]), "malformed"),
    "many headers": (lambda k, h: (_enterprise(k), h + [(f"x-{n}", b"1") for n in range(200)]), "malformed"),
    "a duplicate ce_source": (lambda k, h: (_enterprise(k), [*h, ("ce_source", b"partner-other")]), "malformed"),
    "a newline in ce_source": (
        lambda k, h: (_enterprise(k), _replace(h, ce_source=b'partner/test-partner\n{"level":"error"}')),
        "malformed",
    ),
    "wrong content type": (lambda k, h: (_enterprise(k), _replace(h, **{"content-type": b"text/xml"})), "malformed"),
    "spec version 0.3": (lambda k, h: (_enterprise(k), _replace(h, ce_specversion=b"0.3")), "malformed"),
    "ce_time in year 9999": (
        lambda k, h: (_enterprise(k), _replace(h, ce_time=b"9999-12-31T23:59:59-14:00")),
        "malformed",
    ),
    "no ce_type": (lambda k, h: (_enterprise(k), _replace(h, ce_type=None)), "malformed"),
    "an unknown type": (lambda k, h: (_enterprise(k), _replace(h, ce_type=b"th.fivecogs.x.v1")), "unknown_type"),
    "near the broker's limit": (
        lambda k, h: (_enterprise(k, name="x" * (BROKER_LIMIT - 1_500)), h),
        "oversized",
    ),
    "just over the service's limit": (
        lambda k, h: (_enterprise(k, name="x" * (256 * 1024 + 1 - len(_enterprise(k, name="")))), h),
        "oversized",
    ),
    "a schema violation": (lambda k, h: (_enterprise(k, members="twelve"), h), "schema"),
    "a key that is not the enterprise": (lambda k, h: (_enterprise(k + "-other"), h), "schema"),
    "a count the database cannot hold": (lambda k, h: (_enterprise(k, members=3_000_000_000), h), "processing_error"),
}


def _in(tap: Tap, topic: str, key: str) -> list[Any]:
    return [r for r in tap.records if r.topic == topic and r.key == key.encode()]


async def _outbox_empty(runtime: Runtime, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await runtime.pool.fetchval("SELECT count(*) FROM outbox"):
        assert asyncio.get_running_loop().time() < deadline, "the outbox did not empty"
        await asyncio.sleep(0.2)


async def test_no_hostile_record_stops_its_partition(run_service, stack_env) -> None:
    u = uuid.uuid4().hex[:6]
    keys = {name: f"ent-{u}-{n}" for n, name in enumerate(CORPUS)}
    conflict_key = f"ent-{u}-conflict"
    dlq, events = f"{ingest('inputs')}.dlq", events_topic("inputs")
    async with (
        Partner(stack_env.kafka) as partner,
        Tap(stack_env.kafka, dlq, events, FEEDBACK) as tap,
        run_service(INPUTS) as runtime,
    ):
        for name, (make, _) in CORPUS.items():
            value, headers = make(keys[name], ce_headers(REGISTERED))
            await partner.producer.send_and_wait(
                ingest("inputs"), value, key=keys[name].encode(), headers=headers
            )  # a None value too
            await partner.send_raw(ingest("inputs"), _enterprise(keys[name]), keys[name], ce_headers(REGISTERED))
        # A conflicting copy: the same id as an applied event, other bytes.
        taken = str(uuid.uuid4())
        await partner.send_raw(
            ingest("inputs"), _enterprise(conflict_key), conflict_key, ce_headers(REGISTERED, event_id=taken)
        )
        await partner.send_raw(
            ingest("inputs"),
            _enterprise(conflict_key, members=13),
            conflict_key,
            ce_headers(REGISTERED, event_id=taken),
        )
        await partner.send_raw(
            ingest("inputs"), _enterprise(conflict_key, members=14), conflict_key, ce_headers(REGISTERED)
        )
        everything = [*keys.values(), conflict_key]
        await tap.wait_for(lambda r: r.topic == events and _key(r) in everything, count=len(everything) + 1, timeout=60)
        await tap.wait_for(lambda r: r.topic == dlq and _key(r) in everything, count=len(everything), timeout=60)
        await wait_caught_up(stack_env.kafka, runtime.settings.group_id, [ingest("inputs")])
        await _outbox_empty(runtime)
        stalled = runtime.processor.health.stalled()

    for name, (_, kind) in CORPUS.items():
        [dead] = _in(tap, dlq, keys[name])
        assert header(dead, "fivecogs_error_kind") == kind, f"{name}: {header(dead, 'fivecogs_error_detail')}"
        [applied] = _in(tap, events, keys[name])
        assert data(applied)["members"] == 12, name
    [dead] = _in(tap, dlq, conflict_key)
    assert header(dead, "fivecogs_error_kind") == "conflict"
    assert [data(r)["members"] for r in _in(tap, events, conflict_key)] == [12, 14]
    # The near-limit record is in its DLQ whole, reason headers and all.
    [near] = _in(tap, dlq, keys["near the broker's limit"])
    assert len(near.value) > BROKER_LIMIT - 1_500
    # Partners hear why, without our internals.
    told = [data(r) for r in tap.records if r.topic == FEEDBACK and r.key == PARTNER.encode()]
    stored = [t for t in told if t.get("reason") == "processing_error"]
    assert stored, "the partner was not told about the count"
    assert all("asyncpg" not in t["detail"] and "$" not in t["detail"] for t in stored)
    assert stalled == []


async def test_a_batch_that_fails_as_a_whole_is_halved_until_the_record_is_found(run_service, stack_env) -> None:
    """A handler whose effects break the batch's own writes (here: an outgoing record Postgres cannot store)
    fails the whole transaction, outside the per-record savepoints. Its neighbours must still be applied."""
    culprit = f"ent-{uuid.uuid4().hex[:6]}-culprit"
    register = INPUTS.handlers[REGISTERED]

    async def breaks_the_batch(uow: UnitOfWork, event: Any) -> None:
        await register(uow, event)
        if event.key == culprit:
            uow.publish_raw(OutgoingRecord("bad\x00topic", None, b"{}", []))  # refused only at the outbox write

    definition = dataclasses.replace(INPUTS, handlers={**INPUTS.handlers, REGISTERED: breaks_the_batch})
    neighbours = [f"ent-{uuid.uuid4().hex[:6]}-{n}" for n in range(12)]
    dlq, events = f"{ingest('inputs')}.dlq", events_topic("inputs")
    async with Partner(stack_env.kafka) as partner, Tap(stack_env.kafka, dlq, events, FEEDBACK) as tap:
        order = [*neighbours[:6], culprit, *neighbours[6:]]
        culprit_id = ""
        for key in order:  # published before the service starts, so they arrive in one batch
            event_id = str(uuid.uuid4())
            culprit_id = event_id if key == culprit else culprit_id
            await partner.send_raw(ingest("inputs"), _enterprise(key), key, ce_headers(REGISTERED, event_id=event_id))
        async with run_service(definition) as runtime:
            await tap.wait_for(
                lambda r: r.topic == events and _key(r) in neighbours, count=len(neighbours), timeout=120
            )
            [dead] = await tap.wait_for(lambda r: r.topic == dlq and r.key == culprit.encode())
            [told] = await tap.wait_for(lambda r: r.topic == FEEDBACK and data(r)["event_id"] == culprit_id)
            await wait_caught_up(stack_env.kafka, runtime.settings.group_id, [ingest("inputs")])

    assert header(dead, "fivecogs_error_kind") == "processing_error"
    assert "bad" in header(dead, "fivecogs_error_detail") or "0x00" in header(dead, "fivecogs_error_detail")
    assert data(told)["reason"] == "processing_error"
    assert "0x00" not in data(told)["detail"]
    assert "asyncpg" not in data(told)["detail"]
    assert not _in(tap, events, culprit)  # its effects were undone with it


async def test_a_partition_that_keeps_failing_is_reported_stalled_and_recovers(
    run_service, stack_env, tmp_path
) -> None:
    """An infrastructure error is retried, never skipped; past the threshold the partition shows as stalled
    on /readyz, fivecogs_partition_stalled and `fivecogs lag`, and all clear once it moves again."""
    stuck = f"ent-{uuid.uuid4().hex[:6]}-stuck"
    broken = asyncio.Event()
    broken.set()
    register = INPUTS.handlers[REGISTERED]

    async def disk_on_fire(uow: UnitOfWork, event: Any) -> None:
        if event.key == stuck and broken.is_set():
            raise OSError("disk on fire")  # transient: the batch is retried, never skipped
        await register(uow, event)

    definition = dataclasses.replace(INPUTS, handlers={**INPUTS.handlers, REGISTERED: disk_on_fire})
    group = f"fivecogs-inputs-test-{uuid.uuid4().hex[:8]}"
    await start_at_end(stack_env.kafka, group)  # only this test's record is behind
    store = SampleStore(tmp_path / "samples.sqlite3")
    async with (
        Partner(stack_env.kafka) as partner,
        Tap(stack_env.kafka, events_topic("inputs")) as tap,
        run_service(definition, consumer_group=group, stall_seconds=1.0) as runtime,
    ):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(runtime)), base_url="http://service")
        sent = await partner.producer.send_and_wait(
            ingest("inputs"), _enterprise(stuck), key=stuck.encode(), headers=ce_headers(REGISTERED)
        )
        report = await _until_status(http, 503)
        metrics = (await http.get("/metrics")).text
        await look(stack_env.kafka, store, groups=[group], window=LAG_WINDOW, settle=0)
        await asyncio.sleep(LAG_WINDOW / 2)
        lag = only(await look(stack_env.kafka, store, groups=[group], window=LAG_WINDOW), group)
        broken.clear()
        await tap.wait_for(lambda r: r.key == stuck.encode(), timeout=60)
        await _until_status(http, 200)
        after = (await http.get("/metrics")).text
        await http.aclose()

    # Every partition of the failing batch waits with it; the stuck record's is among them.
    [stall] = [s for s in report["stalled"] if (s["topic"], s["partition"]) == (sent.topic, sent.partition)]
    assert all("disk on fire" in s["reason"] for s in report["stalled"])
    assert report["checks"]["partitions_flowing"] is False
    labels = f'group="{group}",partition="{stall["partition"]}",topic="{stall["topic"]}"'
    line = f"fivecogs_partition_stalled{{{labels}}}"
    assert f"{line} 1.0" in metrics
    assert f"{line} 0.0" in after
    assert lag.status in (Status.STALL, Status.STOP)
    assert lag.lag >= 1


async def _until_status(http: httpx.AsyncClient, status: int, timeout: float = 60) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await http.get("/readyz")
        if response.status_code == status and (status != 200 or not response.json()["stalled"]):
            body: dict[str, Any] = response.json()
            return body
        assert asyncio.get_running_loop().time() < deadline, f"/readyz never answered {status}: {response.text}"
        await asyncio.sleep(0.2)


async def test_communication_takes_a_near_limit_record_and_keeps_sending_notices(run_service, stack_env) -> None:
    """The case that wedged communication's relay: a dead-letter copy of a near-limit record."""
    u = uuid.uuid4().hex[:6]
    ids = [f"sub-{u}-big", f"sub-{u}-after"]
    body = {
        "subscriber_id": ids[0],
        "network": "state",
        "topics": ["certification"],
        "note": "x" * (BROKER_LIMIT - 1_500),
    }
    dlq = f"{ingest('communication')}.dlq"
    async with (
        Partner(stack_env.kafka) as partner,
        Tap(stack_env.kafka, dlq) as tap,
        run_service(COMMUNICATION) as runtime,
    ):
        await partner.send_raw(ingest("communication"), json.dumps(body).encode(), ids[0], ce_headers(SUBSCRIBED))
        valid = {"subscriber_id": ids[1], "network": "state", "topics": ["certification"]}
        await partner.send(ingest("communication"), SUBSCRIBED, valid, ids[1])
        [dead] = await tap.wait_for(lambda r: r.key == ids[0].encode())
        deadline = asyncio.get_running_loop().time() + 30
        while not await runtime.pool.fetchval("SELECT count(*) FROM subscribers WHERE subscriber_id = $1", ids[1]):
            assert asyncio.get_running_loop().time() < deadline, "the valid subscription was not applied"
            await asyncio.sleep(0.2)
        await _outbox_empty(runtime)
    assert header(dead, "fivecogs_error_kind") == "oversized"
    assert len(dead.value) == len(json.dumps(body))  # copied whole, and the relay went on: the outbox emptied


async def test_a_record_the_kafka_client_cannot_decode_is_dead_lettered(run_service, stack_env) -> None:
    """On aiokafka, a header name that is not UTF-8 fails the whole fetch; FastStream's loop would die of it. One
    such record on each partition: whichever the fetch meets last, the others' records were taken before it."""
    dlq, events = f"{ingest('inputs')}.dlq", events_topic("inputs")
    partitions = len(await kafka_admin.topic_partitions(stack_env.kafka, ingest("inputs")))
    keys = _keys_on_every_partition(f"ent-{uuid.uuid4().hex[:6]}-undecodable", partitions)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RAW_HEADER_NAME_PRODUCER,
        ingest("inputs"),
        *keys,
        env={**os.environ, **stack_env.kafka.env(), "AIOKAFKA_NO_EXTENSIONS": "1"},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    bad = {(int(p), int(o)) for p, o in (line.split() for line in out.decode().splitlines())}
    assert {p for p, _ in bad} == set(range(partitions))
    # Valid records on every partition, published before the service starts so that its first fetches hold
    # them with the bad ones: none may be lost while the consumer steps around them.
    others = [*keys, *(f"ent-{uuid.uuid4().hex[:6]}-beside-{n}" for n in range(30))]
    async with Partner(stack_env.kafka) as partner, Tap(stack_env.kafka, dlq, events) as tap:
        for other in others:
            await partner.send_raw(ingest("inputs"), _enterprise(other), other, ce_headers(REGISTERED))
        async with run_service(INPUTS) as runtime:
            applied = await tap.wait_for(lambda r: r.topic == events and _key(r) in others, count=len(others))
            dead = await tap.wait_for(lambda r: r.topic == dlq and _position(r) in bad, count=len(bad))
            await wait_caught_up(stack_env.kafka, runtime.settings.group_id, [ingest("inputs")])

    assert sorted(data(r)["enterprise_id"] for r in applied) == sorted(others)  # each once, none lost
    assert {_position(r) for r in dead} == bad
    assert {header(r, "fivecogs_error_kind") for r in dead} == {"malformed"}
    assert all("cannot decode" in header(r, "fivecogs_error_detail") for r in dead)


def _position(record: Any) -> tuple[int, int]:
    return int(header(record, "fivecogs_original_partition")), int(header(record, "fivecogs_original_offset"))


def _keys_on_every_partition(prefix: str, partitions: int) -> list[str]:
    """One key per partition, by the default partitioner's murmur2 of the key (what every client uses)."""
    found: dict[int, str] = {}
    for n in range(1000):
        key = f"{prefix}-{n}"
        found.setdefault((murmur2(key.encode()) & 0x7FFFFFFF) % partitions, key)
        if len(found) == partitions:
            return [found[p] for p in range(partitions)]
    raise AssertionError("no keys for every partition")


def _key(record: Any) -> str:
    return (record.key or b"").decode(errors="replace")  # other tests' records on these topics may have none
