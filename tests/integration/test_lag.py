"""Consumer lag on the real stack: a stopped inputs service falls behind by exactly the events published, its
status turns STOP at once (no members) and its lag in seconds grows; restarted, it drains to 0 and is OK again.
Seconds behind come from the records' own timestamps; `--watch` piped ends with a final frame on SIGTERM; a
mistyped group gets a did-you-mean. The service's own gauges (`fivecogs_shared.lag.export_lag`) agree with the
CLI's numbers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from fivecogs_inputs.app import DEFINITION
from fivecogs_ops.lag.report import Report, look
from fivecogs_ops.lag.rules import Status
from fivecogs_ops.lag.sampling import record_times
from fivecogs_ops.lag.store import SampleStore
from fivecogs_ops.services import ServiceProcesses
from fivecogs_ops.stack import _free_port_near as free_port_near
from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts.topics import subscription_pattern
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.kafka_admin import TopicSpec
from fivecogs_shared.lag import export_lag
from fivecogs_shared.service import http_app
from tests.support import PARTNER_SOURCE, RAW_HEADER_NAME_PRODUCER, Partner, ingest, operator_token

pytestmark = pytest.mark.integration

INGEST = ingest("inputs")
REGISTERED = "th.fivecogs.enterprise.registered.v1"
EVENTS = 12
WINDOW = 5.0  # seconds: short, so a stopped consumer turns STOP within the test


def enterprise(enterprise_id: str) -> dict[str, object]:
    return {
        "enterprise_id": enterprise_id,
        "name": "Ban Khiriwong Dyed Cloth Group",
        "province": "Nakhon Si Thammarat",
        "sector": "processing",
        "members": 12,
        "target_poor_households": 4,
    }


async def publish(kafka: KafkaAccess, source: str, count: int) -> None:
    async with Partner(kafka, source=source) as partner:
        for _ in range(count):
            ent = f"ent-{uuid.uuid4().hex[:8]}"
            await partner.send(INGEST, REGISTERED, enterprise(ent), ent)


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 90, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if result := await check():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.5)


async def records_between(
    kafka: KafkaAccess, start: dict[TopicPartition, int], end: dict[TopicPartition, int]
) -> list[Any]:
    """The records from `start` (a group's committed offsets) up to `end`, read independently of the lag code."""
    consumer = AIOKafkaConsumer(**kafka.client(), enable_auto_commit=False)
    await consumer.start()
    found: list[Any] = []
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + 30
        while len(found) < sum(end[tp] - start[tp] for tp in start) and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                found += [r for r in records if r.offset < end[tp]]
    finally:
        await consumer.stop()
    return found


def ends_of(group: Any) -> dict[TopicPartition, int]:
    return {TopicPartition(p.topic, p.partition): p.end for p in group.partitions}


async def start_at_end(kafka: KafkaAccess, group: str, cog: str = "inputs") -> None:
    """Commit the current end of every topic the cog's service reads (each partner's), for a new group, so it does
    not begin by reading every earlier test's events."""
    async with kafka_admin.admin_client(kafka) as admin:
        topics = [t for t in await kafka_admin.list_topics(admin) if re.match(subscription_pattern(cog), t)]
        partitions = await kafka_admin.partitions_of(admin, topics)
    if not partitions:
        return
    ends = await kafka_admin.end_offsets(kafka, partitions)
    await kafka_admin.reset_group_offsets(kafka, group, ends)


def only(report: Report, group: str) -> Any:
    [found] = [g for g in report.groups if g.group == group]
    return found


async def run_cli(store: Path, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fivecogs_ops.lag", "lag", "--json", *args,
        env={**os.environ, **env, "FIVECOGS_LAG_STORE": str(store)},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return int(process.returncode or 0), json.loads(out)


async def drop_schema(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def test_stopped_service_falls_behind_then_drains(stack_env, tmp_path) -> None:
    suffix = uuid.uuid4().hex[:8]
    # The group is within the inputs principal's (`fivecogs-inputs*`); the source a desk of the test partner's.
    group, schema = f"fivecogs-inputs-lagtest-{suffix}", f"lagtest_{suffix}_inputs"
    source = f"{PARTNER_SOURCE}/lagtest-{suffix}"
    env = {**stack_env.as_env(), "FIVECOGS_INPUTS_CONSUMER_GROUP": group, "FIVECOGS_INPUTS_DB_SCHEMA": schema}
    processes = ServiceProcesses(
        env=env,
        log_dir=tmp_path,
        ports={"inputs": free_port_near(18291)},  # other checkouts may run this test at the same time
        kafka=stack_env.service_kafka(),
        operator_token=operator_token(),
    )
    store = SampleStore(tmp_path / "samples.sqlite3")
    kafka = stack_env.kafka

    async def sample(settle: float = 2.0) -> Report:
        return await look(kafka, store, groups=[group], window=WINDOW, settle=settle)

    async def drained() -> Report | None:
        report = await sample(settle=0)
        return report if only(report, group).lag == 0 and only(report, group).partitions else None

    try:
        async with asyncio.timeout(300):  # a hang fails with a traceback instead of stalling the suite
            await start_at_end(kafka, group)
            processes.start("inputs")
            await asyncio.to_thread(processes.wait_ready, ["inputs"], 90)
            await until(drained, what="the new group to catch up")
            assert processes.stop("inputs") == 0
            stopped_at = await kafka_admin.committed_offsets(kafka, group)
            before = only(await sample(settle=0), group)  # end == committed here: the table can interpolate later

            await publish(kafka, source, EVENTS)
            first = only(await sample(), group)  # the zero lag seen just before does not excuse a group with no members
            await asyncio.sleep(2)
            second = only(await sample(), group)

            # Other tests may write to the topic too: the lag must be exactly the records past the committed offsets.
            assert {(p.topic, p.partition): p.committed for p in first.partitions} == {
                (tp.topic, tp.partition): offset for tp, offset in stopped_at.items()
            }
            behind = await records_between(kafka, stopped_at, ends_of(first))
            ours = [r for r in behind if dict(r.headers).get("ce_source") == source.encode()]
            assert len(ours) == EVENTS
            assert first.lag == len(behind)  # == EVENTS when nobody else published meanwhile
            assert first.status is second.status is Status.STOP  # no members: at once, on every lagging partition
            assert {p.status for p in first.partitions if p.lag} == {Status.STOP}
            # Since the look that first saw it without members (the one just after the stop), not "since before".
            gone = r"no members since \d\d:\d\d:\d\dZ: nothing consumes lag"
            assert all(re.fullmatch(rf"{gone} {p.lag}", p.reason) for p in first.partitions if p.lag)
            assert second.members == ()  # nobody consumes
            assert first.lag_seconds is not None
            assert second.lag_seconds is not None
            assert second.lag_seconds >= first.lag_seconds + 1.5
            assert before.lag == 0
            assert {p.estimate for p in second.partitions if p.lag} == {"record"}  # each first unconsumed record's

            code, body = await run_cli(store.path, stack_env.as_env(), "--group", group, "--window", str(WINDOW))
            [cli_group] = body["groups"]
            assert (code, body["status"], cli_group["status"]) == (2, "STOP", "STOP")
            assert cli_group["lag"] >= second.lag >= first.lag
            assert cli_group["lag_seconds"] > second.lag_seconds

            processes.start("inputs")
            await asyncio.to_thread(processes.wait_ready, ["inputs"], 90)
            recovered = only(await until(drained, what="the lag to drain"), group)
            assert (recovered.status, recovered.lag, recovered.lag_seconds) == (Status.OK, 0, 0.0)
            assert recovered.members  # the restarted service is the group's member again

            code, body = await run_cli(store.path, stack_env.as_env(), "--group", group, "--window", str(WINDOW))
            assert (code, body["status"], body["groups"][0]["status"]) == (0, "OK", "OK")
    finally:
        processes.stop_all()
        await drop_schema(stack_env.database_url, schema)


AGE = 120.0  # seconds: how old the records of a "dead group" are when it is first looked at
PARTITIONS = 3


async def dead_group(kafka: KafkaAccess, records: int = 4) -> tuple[str, str, float]:
    """A fresh topic whose every partition holds `records` records written AGE seconds ago (explicit timestamps),
    and a fresh group, with no members, that committed offset 0 on each: (topic, group, the records' time)."""
    suffix = uuid.uuid4().hex[:8]
    topic, group = f"fivecogs.lagtest-{suffix}.events", f"fivecogs-lagtest-{suffix}"
    await kafka_admin.ensure_topics(kafka, [TopicSpec(topic, partitions=PARTITIONS)])
    written_ms = int((time.time() - AGE) * 1000)
    producer = AIOKafkaProducer(**kafka.client(), acks="all")
    await producer.start()
    try:
        for partition in range(PARTITIONS):
            for n in range(records):
                await producer.send_and_wait(topic, f"r{n}".encode(), partition=partition, timestamp_ms=written_ms)
    finally:
        await producer.stop()
    await kafka_admin.reset_group_offsets(kafka, group, {TopicPartition(topic, p): 0 for p in range(PARTITIONS)})
    return topic, group, written_ms / 1000


async def test_seconds_behind_are_the_first_unconsumed_records_age(stack_env, tmp_path) -> None:
    kafka, store = stack_env.kafka, SampleStore(tmp_path / "samples.sqlite3")
    async with asyncio.timeout(120):
        topic, group, written = await dead_group(kafka)
        first = only(await look(kafka, store, groups=[group], settle=0), group)
        looked = time.time()
        second_look = await look(kafka, store, groups=[group], settle=0)
    again = only(second_look, group)

    assert [(p.partition, p.lag, p.estimate) for p in first.partitions] == [(n, 4, "record") for n in range(PARTITIONS)]
    for p in first.partitions:
        assert p.lag_seconds == pytest.approx(looked - written, abs=1.0)  # the records' age, within a second
    assert (first.lag, first.estimate) == (4 * PARTITIONS, "record")
    assert first.lag_seconds is not None
    assert first.lag_seconds >= AGE
    # A group with lag and no members is STOP from its very first look, on every partition.
    assert (first.status, {p.status for p in first.partitions}) == (Status.STOP, {Status.STOP})
    # Every sample kept shows it without members: since before the first look, as far as the tool can tell.
    assert re.fullmatch(
        rf"{re.escape(topic)}/0: no members since before \d\d:\d\d:\d\dZ: nothing consumes lag 4", first.reason
    )
    # The second look reads the timestamps from the store's cache: the same records, as old as the clock says.
    firsts = [(topic, n, 0) for n in range(PARTITIONS)]
    assert store.record_times(firsts) == dict.fromkeys(firsts, pytest.approx(written, abs=0.001))
    assert [p.estimate for p in again.partitions] == ["record"] * PARTITIONS
    assert again.lag_seconds == pytest.approx(second_look.time - written, abs=0.01)


async def test_a_record_the_client_cannot_decode_costs_only_its_own_partitions_seconds(stack_env) -> None:
    """A header name that is not UTF-8 fails aiokafka's whole fetch: the record times of the other partitions, and
    of the records before it on its own partition, are still read; only its own is left to interpolation."""
    kafka = stack_env.kafka
    async with asyncio.timeout(120):
        topic, _, written = await dead_group(kafka)
        producer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", RAW_HEADER_NAME_PRODUCER, topic, "undecodable",
            env={**os.environ, **kafka.env(), "AIOKAFKA_NO_EXTENSIONS": "1"}, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await producer.communicate()
        bad_partition, bad_offset = map(int, out.split())
        firsts = {TopicPartition(topic, n): 0 for n in range(PARTITIONS)}
        from_the_start = await record_times(kafka, firsts)
        at_the_bad_one = await record_times(kafka, {**firsts, TopicPartition(topic, bad_partition): bad_offset})

    assert from_the_start == dict.fromkeys(firsts, pytest.approx(written, abs=0.001))
    assert at_the_bad_one == {tp: pytest.approx(written, abs=0.001) for tp in firsts if tp.partition != bad_partition}


def cli_env(stack_env: Any, store: Path) -> dict[str, str]:
    return {**os.environ, **stack_env.as_env(), "FIVECOGS_LAG_STORE": str(store)}


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
async def test_a_piped_watch_ends_with_a_final_frame_on_sigterm(stack_env, tmp_path, as_json) -> None:
    kafka, store = stack_env.kafka, SampleStore(tmp_path / "samples.sqlite3")
    fivecogs = Path(sys.executable).with_name("fivecogs")
    async with asyncio.timeout(120):
        topic, group, _ = await dead_group(kafka)
        args = ["lag", "--watch", "--group", group, *(["--json"] if as_json else [])]
        watch = await asyncio.create_subprocess_exec(
            fivecogs, *args, env=cli_env(stack_env, store.path), stdout=asyncio.subprocess.PIPE
        )
        assert watch.stdout is not None
        if as_json:
            first_line = await watch.stdout.readline()  # one line per look: the first look is done
        else:
            # Piped, the table waits for the end; a second look's samples mean the first look is done.
            await until(lambda: _looks(store, group, 2), what="the watch's second look")
        watch.send_signal(signal.SIGTERM)
        rest, _ = await watch.communicate()
    out = (first_line if as_json else b"") + rest
    assert watch.returncode == 2  # the last look's STOP
    if as_json:
        *_, final = out.decode().splitlines()
        body = json.loads(final)
        assert (body["status"], [g["group"] for g in body["groups"]]) == ("STOP", [group])
    else:
        text = " ".join(out.decode().split())
        assert f"{group} STOP lag 12" in text
        assert all(f"{topic}/{n}" in text for n in range(PARTITIONS))
        assert len(re.findall(r"no members since before \d\d:\d\d:\d\dZ: nothing consumes lag 4", text)) == PARTITIONS


async def _looks(store: SampleStore, group: str, count: int) -> bool:
    return len({s.time for s in store.history([group], since=0)}) >= count


async def test_a_group_named_without_its_prefix_gets_a_did_you_mean(stack_env, tmp_path) -> None:
    async with asyncio.timeout(120):
        _, group, _ = await dead_group(stack_env.kafka, records=1)
        short = group.removeprefix("fivecogs-")
        cli = await asyncio.create_subprocess_exec(
            Path(sys.executable).with_name("fivecogs"), "lag", "--group", short,
            env=cli_env(stack_env, tmp_path / "samples.sqlite3"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await cli.communicate()
    assert (cli.returncode, out) == (3, b"")
    assert err.decode() == f"error: no such consumer group {short!r}: did you mean {group!r}?\n"


def gauges(text: str, group: str) -> dict[tuple[str, str, int], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in ("fivecogs_consumer_lag", "fivecogs_consumer_lag_seconds") and s.labels["group"] == group:
                values[(s.name, s.labels["topic"], int(s.labels["partition"]))] = s.value
    return values


async def test_service_gauges_show_the_same_lag_as_the_cli(run_service, stack_env, tmp_path) -> None:
    def fast(runtime: Any) -> Any:
        return export_lag(runtime, interval=0.3)

    definition = dataclasses.replace(DEFINITION, background=(*DEFINITION.background, fast))
    source = f"{PARTNER_SOURCE}/lagtest-{uuid.uuid4().hex[:8]}"
    store = SampleStore(tmp_path / "samples.sqlite3")
    # A hang anywhere (broker, coordinator) fails the test with a traceback instead of stalling the suite.
    async with asyncio.timeout(240), run_service(definition) as runtime:
        group = runtime.settings.group_id
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(runtime)), base_url="http://svc")

        async def metrics() -> dict[tuple[str, str, int], float]:
            return gauges((await client.get("/metrics")).text, group)

        async def caught_up() -> bool:
            shown = await metrics()
            ours = [key for key in shown if key[1] == INGEST]  # every partner's topic is read; ours has 3 partitions
            return len(ours) == 6 and not any(shown.values())  # 3 partitions × (records, seconds), all 0

        await until(caught_up, what="the service's gauges to show it caught up")
        [consumer] = [s.consumer for s in runtime.broker.subscribers if getattr(s, "consumer", None)]
        consumer.pause(*consumer.assignment())  # the process lives on, but reads nothing: it falls behind
        await publish(stack_env.kafka, source, EVENTS)

        async def behind() -> dict[tuple[str, str, int], float] | None:
            shown = await metrics()
            records = sum(v for (name, _, _), v in shown.items() if name == "fivecogs_consumer_lag")
            return shown if records >= EVENTS else None

        before = await until(behind, timeout=30, what="the gauges to show the published events")
        report = only(await look(stack_env.kafka, store, groups=[group], settle=0), group)
        await asyncio.sleep(1)  # a few refreshes of the gauges after the CLI's look
        after = await metrics()
        # The consumer is paused, so lag only grows (others may write too): gauges before <= CLI <= gauges after.
        for p in report.partitions:
            key = ("fivecogs_consumer_lag", p.topic, p.partition)
            assert before[key] <= p.lag <= after[key]
            assert (after[("fivecogs_consumer_lag_seconds", p.topic, p.partition)] > 0) == (p.lag > 0)
        assert report.lag >= EVENTS
        assert {m.client_id for m in report.members} == {"fivecogs-inputs"}

        consumer.resume(*consumer.assignment())
        await until(caught_up, what="the gauges to drain back to 0")
        await client.aclose()
