"""What operators read: every line a service process writes is JSON, and one grep follows a partner event.

Real processes, as deployed (`ServiceProcesses`), with stderr piped to a file: logging's `auto` format must
choose JSON there, for the libraries' lines too."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from fivecogs_inputs.app import DEFINITION as INPUTS
from fivecogs_knowledge.app import DEFINITION as KNOWLEDGE
from fivecogs_ops.services import ServiceProcesses
from fivecogs_shared.contracts import internal_type
from fivecogs_shared.contracts.feedback import ACCEPTED_TYPE, HELD_TYPE, REJECTED_TYPE
from fivecogs_shared.kafka_access import KafkaAccess
from tests.integration.test_held import delivery
from tests.integration.test_lag import INGEST, REGISTERED, enterprise, start_at_end
from tests.support import FEEDBACK, PARTNER, PARTNER_SOURCE, Partner, Tap, data, free_port, header, operator_token

pytestmark = pytest.mark.integration

INTERNAL_REGISTERED = internal_type("inputs", "enterprise.registered")
DELIVERED = "th.fivecogs.input.delivered.v1"


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
    assert lines[-1]["event"] == "service stopped by Kafka or Postgres"
    assert lines[-1]["level"] == "error"
    assert "Traceback" not in (tmp_path / "inputs.log").read_text()


def test_a_service_with_a_refused_setting_names_it_in_one_json_line_and_exits_2(stack_env, tmp_path) -> None:
    processes = ServiceProcesses(
        env=stack_env.as_env(), log_dir=tmp_path, ports={"inputs": free_port()}, operator_token=operator_token()
    )
    processes.start("inputs", extra_env={"FIVECOGS_INPUTS_LOG_LEVEL": "verbose"})
    try:
        assert processes.processes["inputs"].wait(60) == 2
    finally:
        processes.stop_all()

    [line] = log_lines(tmp_path / "inputs.log")
    assert line["event"] == "settings refused; the service does not start"
    [problem] = line["problems"]
    assert problem.startswith("FIVECOGS_INPUTS_LOG_LEVEL: Value error, must be one of debug, info")


async def _register(partner_access: KafkaAccess, enterprise_id: str) -> str:
    async with Partner(partner_access) as partner:
        return await partner.send(INGEST, REGISTERED, enterprise(enterprise_id), enterprise_id)


def test_one_grep_follows_a_partner_event_through_two_services(stack_env, test_partner, tmp_path) -> None:
    """With FIVECOGS_TRACE_EVENTS, inputs logs the partner event it applies and the event it publishes, and
    knowledge the event it applies from inputs: all three lines carry the partner event's id as correlation_id."""
    suffix = uuid.uuid4().hex[:8]
    definitions = {"inputs": INPUTS, "knowledge": KNOWLEDGE}
    groups = {cog: f"fivecogs-{cog}-logs-{suffix}" for cog in definitions}
    for cog in definitions:
        asyncio.run(start_at_end(stack_env.kafka, groups[cog], cog))
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
    assert (applied["event_id"], applied["partner"], applied["topic"]) == (chain, "test-partner", INGEST)
    assert any(line["event"] == "batch applied" and line.get("accepted") == 1 for line in inputs)
    # A normal start and stop: FastStream's expected lines are not warnings (aiokafka may warn that the group's
    # coordinator is not ready yet, now and then: a real, if passing, condition).
    assert not [line for line in inputs + knowledge if line["event"].startswith("Auto create topics")]
    assert not [line for line in inputs + knowledge if line.get("logger") == "faststream" and line["level"] != "info"]


def one(logs: Sequence[Mapping[str, Any]], event: str, event_id: str) -> Mapping[str, Any]:
    [line] = [line for line in logs if line["event"] == event and line.get("event_id") == event_id]
    return line


async def test_held_and_released_lines_name_the_event_and_its_partner(run_service, stack_env) -> None:
    suffix = uuid.uuid4().hex[:8]
    ent, batch, group = f"ent-logs-{suffix}", f"batch-logs-{suffix}", f"fivecogs-inputs-test-logs-{suffix}"
    await start_at_end(stack_env.kafka, group)
    with capture_logs() as logs:
        async with (
            asyncio.timeout(120),
            Partner(stack_env.kafka, source=f"{PARTNER_SOURCE}/logs-{suffix}") as partner,
            Tap(stack_env.kafka, FEEDBACK) as tap,
            run_service(INPUTS, consumer_group=group, trace_events=True),
        ):
            late = await partner.send(INGEST, DELIVERED, delivery(f"{batch}-d1", batch, ent), batch)
            await tap.wait_for(lambda r: header(r, "ce_type") == HELD_TYPE and data(r)["event_id"] == late)
            await partner.send(INGEST, REGISTERED, enterprise(ent), ent)
            await tap.wait_for(lambda r: header(r, "ce_type") == ACCEPTED_TYPE and data(r)["event_id"] == late)

    held, released, applied = (
        one(logs, event, late) for event in ("event held", "held event released", "event applied")
    )
    assert held["awaits"] == f"enterprise:{ent}"
    for line in (held, released, applied):
        assert (line["partner"], line["ce_source"], line["topic"]) == (
            PARTNER,
            f"{PARTNER_SOURCE}/logs-{suffix}",
            INGEST,
        )
        assert (line["correlation_id"], line["ce_type"]) == (late, DELIVERED)
        assert isinstance(line["offset"], int)
    assert released["outcome"] == "accepted"
    assert any(line["event"] == "batch applied" and line.get("held") == 1 for line in logs)
    assert any(line["event"] == "batch applied" and line.get("released") == 1 for line in logs)


async def test_an_event_whose_wait_is_over_is_rejected_on_a_line_that_names_it(run_service, stack_env) -> None:
    suffix = uuid.uuid4().hex[:8]
    batch, group = f"batch-orphan-{suffix}", f"fivecogs-inputs-test-orphan-{suffix}"
    await start_at_end(stack_env.kafka, group)
    with capture_logs() as logs:
        async with (
            asyncio.timeout(120),
            Partner(stack_env.kafka) as partner,
            Tap(stack_env.kafka, FEEDBACK) as tap,
            run_service(INPUTS, consumer_group=group, hold_seconds=1, hold_check_seconds=0.2),
        ):
            orphan = await partner.send(INGEST, DELIVERED, delivery(f"{batch}-d1", batch, f"ent-never-{suffix}"), batch)
            await tap.wait_for(lambda r: header(r, "ce_type") == REJECTED_TYPE and data(r)["event_id"] == orphan)

    rejected = one(logs, "event rejected", orphan)
    assert rejected["final"] is True
    assert rejected["reason"] == "rule:unknown_enterprise"
    assert (rejected["partner"], rejected["correlation_id"], rejected["topic"]) == (PARTNER, orphan, INGEST)
    assert any(line["event"] == "held events judged at the end of their wait" for line in logs)
    assert "event held" not in [line["event"] for line in logs]  # not tracing: no line per event
