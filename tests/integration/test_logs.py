"""What operators read: every line a service process writes is JSON, and one grep follows a partner event.

Real processes, as deployed (`ServiceProcesses`), with stderr piped to a file: logging's `auto` format must
choose JSON there, for the libraries' lines too."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from fivecogs_inputs.app import DEFINITION as INPUTS
from fivecogs_knowledge.app import DEFINITION as KNOWLEDGE
from fivecogs_ops.services import ServiceProcesses
from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts import internal_type
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.service import ServiceDefinition
from tests.support import Partner, free_port, ingest, operator_token

pytestmark = pytest.mark.integration

REGISTERED = "th.fivecogs.enterprise.registered.v1"
INTERNAL_REGISTERED = internal_type("inputs", "enterprise.registered")


def log_lines(path: Path, *, complete_only: bool = False) -> list[dict[str, Any]]:
    """Every line of a service's log, parsed: the first that is not one JSON object fails the test.
    `complete_only`: without a last line the service may still be writing."""
    text = path.read_text() if path.exists() else ""
    if complete_only:
        text = text[: text.rfind("\n") + 1]
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"{path.name} line {number} is not JSON: {line[:300]}")
        assert {"service", "level", "timestamp"} <= parsed.keys(), f"{path.name} line {number}: {line[:300]}"
        lines.append(parsed)
    return lines


def wait_for_line(path: Path, wanted: dict[str, str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(wanted.items() <= line.items() for line in log_lines(path, complete_only=True)):
            return
        time.sleep(0.3)
    raise AssertionError(f"no line with {wanted} in {path.name} after {timeout:.0f}s")


def test_a_service_that_cannot_reach_kafka_says_so_in_json_lines_and_exits_1(stack_env, tmp_path) -> None:
    """The library's own error (aiokafka, connecting) and the service's last word: JSON, no traceback."""
    processes = ServiceProcesses(
        env=stack_env.as_env(), log_dir=tmp_path, ports={"inputs": free_port()}, operator_token=operator_token()
    )
    nobody = f"127.0.0.1:{free_port()}"
    processes.start("inputs", extra_env={"KAFKA_BOOTSTRAP_SERVERS": nobody, "FIVECOGS_INPUTS_LOG_FORMAT": "auto"})
    try:
        assert processes.processes["inputs"].wait(60) == 1
    finally:
        processes.stop_all()

    lines = log_lines(tmp_path / "inputs.log")
    assert {line["service"] for line in lines} == {"fivecogs-inputs"}
    assert any(line.get("logger", "").startswith("aiokafka") and nobody in line["event"] for line in lines)
    assert lines[-1]["event"] == "service stopped: Kafka or Postgres did not answer"
    assert lines[-1]["level"] == "error"
    assert "Traceback" not in (tmp_path / "inputs.log").read_text()


async def _at_log_end(kafka: KafkaAccess, group: str, definition: ServiceDefinition) -> None:
    """The new group starts where every topic it reads ends now: it sees this test's events only."""
    pattern = re.compile(definition.sources().pattern())
    async with kafka_admin.admin_client(kafka) as admin:
        topics = [topic for topic in await kafka_admin.list_topics(admin) if pattern.match(topic)]
        partitions = await kafka_admin.partitions_of(admin, topics)
    await kafka_admin.reset_group_offsets(kafka, group, await kafka_admin.end_offsets(kafka, partitions))


async def _register(partner_access: KafkaAccess, enterprise: str) -> str:
    body = {
        "enterprise_id": enterprise,
        "name": "Ban Khiriwong Dyed Cloth Group",
        "province": "Nakhon Si Thammarat",
        "sector": "processing",
        "members": 12,
        "target_poor_households": 4,
    }
    async with Partner(partner_access) as partner:
        return await partner.send(ingest("inputs"), REGISTERED, body, enterprise)


def test_one_grep_follows_a_partner_event_through_two_services(stack_env, test_partner, tmp_path) -> None:
    """With FIVECOGS_TRACE_EVENTS, inputs logs the partner event it applies and the event it publishes, and
    knowledge the event it applies from inputs: all three lines carry the partner event's id as correlation_id."""
    suffix = uuid.uuid4().hex[:8]
    definitions = {"inputs": INPUTS, "knowledge": KNOWLEDGE}
    groups = {cog: f"fivecogs-{cog}-logs-{suffix}" for cog in definitions}
    for cog, definition in definitions.items():
        asyncio.run(_at_log_end(stack_env.kafka, groups[cog], definition))
    processes = ServiceProcesses(
        env=stack_env.as_env(),
        log_dir=tmp_path,
        ports={cog: free_port() for cog in definitions},
        kafka=stack_env.service_kafka(),
        operator_token=operator_token(),
    )
    for cog in definitions:
        prefix = f"FIVECOGS_{cog.upper()}_"
        settings = {"CONSUMER_GROUP": groups[cog], "DB_SCHEMA": f"logs_{cog}_{suffix}", "LOG_FORMAT": "auto"}
        processes.start(cog, extra_env={"FIVECOGS_TRACE_EVENTS": "true"} | {prefix + k: v for k, v in settings.items()})
    try:
        processes.wait_ready(list(definitions), timeout=90)
        chain = asyncio.run(_register(test_partner.access, f"ent-{suffix}"))
        wait_for_line(tmp_path / "knowledge.log", {"event": "event applied", "correlation_id": chain})
        wait_for_line(tmp_path / "inputs.log", {"event": "event published", "correlation_id": chain})
    finally:
        processes.stop_all()

    inputs, knowledge = log_lines(tmp_path / "inputs.log"), log_lines(tmp_path / "knowledge.log")
    followed = {
        (line["service"], line["event"], line["ce_type"])
        for line in inputs + knowledge
        if line.get("correlation_id") == chain
    }
    assert followed >= {
        ("fivecogs-inputs", "event applied", REGISTERED),
        ("fivecogs-inputs", "event published", INTERNAL_REGISTERED),
        ("fivecogs-knowledge", "event applied", INTERNAL_REGISTERED),
    }
    [applied] = [line for line in inputs if line["event"] == "event applied" and line["correlation_id"] == chain]
    assert (applied["event_id"], applied["partner"], applied["topic"]) == (chain, "test-partner", ingest("inputs"))
    assert any(line["event"] == "batch applied" and line.get("accepted") == 1 for line in inputs)
    # A normal start and stop: FastStream's expected lines are not warnings (aiokafka may warn that the group's
    # coordinator is not ready yet, now and then: a real, if passing, condition).
    assert not [line for line in inputs + knowledge if line["event"].startswith("Auto create topics")]
    assert not [line for line in inputs + knowledge if line.get("logger") == "faststream" and line["level"] != "info"]
