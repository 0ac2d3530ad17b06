"""The operator's DLQ tools and service lookup on the real stack: `dlq list` shows each parked record, joins no
consumer group and follows `dlq replay`'s progress; `fivecogs report` finds a management that `fivecogs serve`
started on a port of its own."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from typer.testing import CliRunner

from fivecogs_ops import partners
from fivecogs_ops.cli import app
from fivecogs_ops.principals import OPERATOR, REPLAYER, service_username
from fivecogs_ops.service_urls import find_service, running_services
from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts import dlq_topic, ingest_topic
from fivecogs_shared.kafka_access import KafkaAccess

pytestmark = pytest.mark.integration

# Not processing_error: test_replay replays every inputs DLQ's records of that kind, these too.
KINDS = ("rule_violation", "bad_envelope", "malformed")


def _why(n: int, source: str) -> list[tuple[str, bytes]]:
    """The headers a service's consumer writes on a dead letter (fivecogs_shared.consumer), after the partner's."""
    return [
        ("ce_id", f"ev-{n}".encode()),
        ("ce_type", b"th.fivecogs.enterprise.registered.v1"),
        ("fivecogs_error_kind", KINDS[n % 3].encode()),
        ("fivecogs_error_detail", f"reason number {n}".encode()),
        ("fivecogs_original_topic", source.encode()),
        ("fivecogs_original_partition", b"0"),
        ("fivecogs_original_offset", str(40 + n).encode()),
        ("fivecogs_consumer_group", b"fivecogs-inputs"),
    ]


async def _dead_letter(admin: KafkaAccess, source: str, numbers: range) -> None:
    producer = AIOKafkaProducer(**admin.client())
    await producer.start()
    try:
        for n in numbers:  # one partition: their order is the order sent
            await producer.send_and_wait(dlq_topic(source), b'{"x": 1}', key=b"k", partition=0, headers=_why(n, source))
    finally:
        await producer.stop()


async def _groups(admin: KafkaAccess) -> list[str]:
    return await kafka_admin.list_groups(admin)


def _as(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _listed(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["dlq", "list", *args, "--json"])
    assert result.exit_code in (0, 1), result.output
    body: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, body


def test_dlq_list_shows_each_record_joins_no_group_and_follows_replay(stack_env, monkeypatch) -> None:
    partner = f"dlq-tools-{uuid.uuid4().hex[:8]}"
    source = ingest_topic("inputs", partner)
    # Provisioned as a real one: a service that later reads what is replayed may dead-letter it again.
    asyncio.run(partners.add(stack_env.kafka, partner, ["inputs"]))
    asyncio.run(_dead_letter(stack_env.kafka, source, range(3)))
    _as(monkeypatch, stack_env.as_env(OPERATOR))
    monkeypatch.setenv("FIVECOGS_INPUTS_DB_SCHEMA", f"test_dlq_{uuid.uuid4().hex[:8]}")  # no parked rows there

    before = asyncio.run(_groups(stack_env.kafka))
    code, body = _listed("inputs", "--partner", partner)
    assert asyncio.run(_groups(stack_env.kafka)) == before  # read without joining or creating a group
    assert code == 1  # dead letters waiting
    assert (body["waiting"], body["replayed"], body["shown"]) == (3, 0, 3)
    assert body["by_kind"] == dict.fromkeys(KINDS, 1)
    first = body["dead_letters"][0]
    assert {k: v for k, v in first.items() if k != "time"} == {
        "topic": dlq_topic(source),
        "partition": 0,
        "offset": 0,
        "partner": partner,
        "cog": "inputs",
        "ce_id": "ev-0",
        "ce_type": "th.fivecogs.enterprise.registered.v1",
        "kind": "rule_violation",
        "detail": "reason number 0",
        "read_at": f"{source}/0@40",
        "consumer_group": "fivecogs-inputs",
        "replayed": False,
        "whole": True,
    }
    assert first["time"].endswith("+00:00")
    limited = CliRunner().invoke(app, ["dlq", "list", "inputs", "--partner", partner, "--limit", "1", "--json"])
    assert (json.loads(limited.stdout)["shown"], json.loads(limited.stdout)["waiting"]) == (1, 3)
    table = CliRunner().invoke(app, ["dlq", "list", "inputs", "--partner", partner], env={"COLUMNS": "80"})
    assert dlq_topic(source) in table.stdout.split()  # the topic's name whole, at 80 columns
    assert "ev-2" in table.stdout.split()

    _as(monkeypatch, stack_env.as_env(REPLAYER))
    replayed = CliRunner().invoke(app, ["dlq", "replay", "inputs", "--partner", partner, "--json"])
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout)["replayed"] == 3
    ends = asyncio.run(kafka_admin.end_offsets(stack_env.kafka, [TopicPartition(source, p) for p in range(3)]))
    assert sum(ends.values()) == 3  # sent back to the partner's topic

    _as(monkeypatch, stack_env.as_env(OPERATOR))
    assert _listed("inputs", "--partner", partner)[0] == 0  # nothing waiting
    code, body = _listed("inputs", "--partner", partner, "--all")
    assert (code, body["waiting"], body["replayed"]) == (0, 0, 3)
    assert [r["replayed"] for r in body["dead_letters"]] == [True, True, True]
    asyncio.run(_dead_letter(stack_env.kafka, source, range(3, 4)))
    code, body = _listed("--partner", partner)  # every cog
    assert (code, body["waiting"], body["replayed"]) == (1, 1, 3)
    assert [(r["offset"], r["ce_id"]) for r in body["dead_letters"]] == [(3, "ev-3")]


def test_dlq_list_exits_3_when_kafka_cannot_be_asked(monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{_free_port()}")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    result = CliRunner().invoke(app, ["dlq", "list", "inputs"])
    assert result.exit_code == 3
    assert "error: dead letters could not be read from Kafka" in result.stderr
    assert "Traceback" not in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_report_finds_management_that_serve_started_on_another_port(stack_env, tmp_path, monkeypatch) -> None:
    port, suffix = _free_port(), uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        **stack_env.as_env(service_username("management")),
        "FIVECOGS_HOME": str(tmp_path),  # a stack directory of its own: the record is this test's only
        "FIVECOGS_MANAGEMENT_HTTP_PORT": str(port),
        "FIVECOGS_MANAGEMENT_DB_SCHEMA": f"test_report_{suffix}",
        "FIVECOGS_MANAGEMENT_CONSUMER_GROUP": f"fivecogs-management-test-{suffix}",
    }
    serve = [str(Path(sys.executable).parent / "fivecogs"), "serve", "management"]
    with (tmp_path / "management.log").open("wb") as log:
        process = subprocess.Popen(serve, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until(lambda: running_services(tmp_path / ".stack").get("management") == url and _answers(url))
        monkeypatch.setenv("FIVECOGS_HOME", str(tmp_path))
        monkeypatch.delenv("FIVECOGS_MANAGEMENT_URL", raising=False)
        assert find_service("management") == url  # from the stack's record, before the default port
        shown = CliRunner().invoke(app, ["report", "--by", "region", "--json"])
        assert shown.exit_code == 0, shown.output
        assert "totals" in json.loads(shown.stdout)
    finally:
        process.terminate()
        process.wait(30)
    assert "management" not in running_services(tmp_path / ".stack")  # dropped on exit
    assert "management" not in json.loads((tmp_path / ".stack" / "services.json").read_text())


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_until(check, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.3)
