"""A service as it is deployed: its own OS process, HTTP health endpoints, and a clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from fivecogs_inputs.app import DEFINITION
from fivecogs_ops.services import ServiceProcesses
from tests.support import Partner, Tap, bearer, header, ingest, operator_token

pytestmark = pytest.mark.integration


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port`, from the kernel's own table (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, port_hex = local.partition(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_inputs_process_is_ready_serves_metrics_and_stops_on_sigterm(stack_env, tmp_path) -> None:
    processes = ServiceProcesses(
        env=stack_env.as_env(),
        log_dir=tmp_path,
        ports={"inputs": 18181},
        kafka=stack_env.service_kafka(),
        operator_token=operator_token(),
    )
    processes.start("inputs")
    try:
        processes.wait_ready(["inputs"], timeout=60)
        assert listening_addresses(18181) == {"0100007F"}  # 127.0.0.1 only: nobody set FIVECOGS_HTTP_HOST
        # Behind the token check: with a token, the router answers (no such route); without, nothing does.
        assert httpx.get(processes.url("inputs", "/v1/nothing"), headers=bearer()).status_code == 404
        assert httpx.get(processes.url("inputs", "/v1/nothing")).status_code == 401
        assert httpx.get(processes.url("inputs", "/healthz")).json() == {"status": "ok", "service": "inputs"}
        ready = httpx.get(processes.url("inputs", "/readyz")).json()
        assert ready["checks"] == {
            "broker": True,
            "database": True,
            "partitions_assigned": True,
            "partitions_flowing": True,
        }
        metrics = httpx.get(processes.url("inputs", "/metrics")).text
        assert "fivecogs_outbox_backlog" in metrics
        process = processes.processes["inputs"]
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        processes.stop_all()
    log = (tmp_path / "inputs.log").read_text()
    assert '"event": "service stopped"' in log  # the shutdown ran its course: consumer stopped, outbox flushed
    assert "management API is locked" not in log
    assert operator_token() not in log


def test_a_process_without_operator_tokens_is_locked_and_says_so(stack_env, tmp_path) -> None:
    processes = ServiceProcesses(
        env=stack_env.as_env(),
        log_dir=tmp_path,
        ports={"inputs": 18182},
        kafka=stack_env.service_kafka(),
        operator_token=operator_token(),
    )
    processes.start("inputs", extra_env={"FIVECOGS_OPERATOR_TOKENS": ""})  # what an unconfigured deployment has
    try:
        processes.wait_ready(["inputs"], timeout=60)  # the probes stay open: it is alive and ready
        for headers in ({}, bearer()):
            response = httpx.get(processes.url("inputs", "/v1/nothing"), headers=headers)
            assert response.status_code == 401
            assert "no operator token is configured" in response.json()["error"]
        assert httpx.get(processes.url("inputs", "/metrics")).status_code == 200
    finally:
        processes.stop_all()
    lines = [json.loads(line) for line in (tmp_path / "inputs.log").read_text().splitlines() if line.startswith("{")]
    [listening] = [line for line in lines if line["event"] == "http listening"]
    assert listening["host"] == "127.0.0.1"
    [warning] = [line for line in lines if "management API is locked" in line["event"]]
    assert warning["level"] == "warning"
    assert "FIVECOGS_OPERATOR_TOKENS" in warning["event"]


async def test_a_background_task_that_ignores_cancellation_cannot_hold_the_shutdown(run_service, capfd) -> None:
    """Python 3.11's asyncio.wait_for can swallow a cancellation; a task looping around it then never ends.
    Seen once as a test stalled at shutdown: the stop must be bounded whatever the background tasks do."""
    released = asyncio.Event()

    async def stubborn(_runtime: object) -> None:
        while not released.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue  # what a swallowed cancellation amounts to

    definition = dataclasses.replace(DEFINITION, background=(*DEFINITION.background, stubborn))

    async def serve_briefly() -> float:
        async with run_service(definition):
            await asyncio.sleep(0.3)  # the background tasks are under way
            started = time.monotonic()
        return time.monotonic() - started

    serving = asyncio.create_task(serve_briefly())
    try:
        done, _ = await asyncio.wait([serving], timeout=30)
    finally:
        released.set()  # let the left-behind task end, so it does not outlive the test
    assert done, "the service never finished stopping"
    assert serving.result() < 9  # SHUTDOWN_SECONDS
    captured = capfd.readouterr()
    lines = (captured.out + captured.err).splitlines()  # the service's log
    left = [line for line in lines if "background task did not stop; left behind" in line]
    assert len(left) == 1
    assert "stubborn" in left[0]
    assert "service stopped" in lines[-1]


async def test_an_embedded_service_logs_plain_tracebacks_not_every_local(run_service, stack_env, capfd) -> None:
    """The 30 s silence of issue 9: a service embedded without logging configured ran on structlog's development
    defaults, whose tracebacks render the locals of every frame (a batch of 500 records among them). That took
    seconds to a minute per failing record, on the event loop: nothing was consumed, heartbeated or relayed
    meanwhile. An embedded service now configures its own logging."""
    structlog.reset_defaults()  # as in a process that never configured logging
    marker = f"local-{uuid.uuid4().hex}"

    async def fails(_uow: object, _event: object) -> None:
        held = [marker] * 3  # a local, as a batch of records is one in the consumer's frames
        raise RuntimeError(f"a bug ({len(held)})")

    registered = "th.fivecogs.enterprise.registered.v1"
    definition = dataclasses.replace(DEFINITION, handlers={**DEFINITION.handlers, registered: fails})
    ent = f"ent-{uuid.uuid4().hex[:6]}"
    body: dict[str, Any] = {
        "enterprise_id": ent,
        "name": "Ban Khiriwong Dyed Cloth Group",
        "province": "Nakhon Si Thammarat",
        "sector": "processing",
        "members": 12,
        "target_poor_households": 4,
    }
    dlq = f"{ingest('inputs')}.dlq"
    async with Partner(stack_env.kafka) as partner, Tap(stack_env.kafka, dlq) as tap, run_service(definition):
        await partner.send(ingest("inputs"), registered, body, ent)
        [dead] = await tap.wait_for(lambda r: r.key == ent.encode(), timeout=60)
    printed = capfd.readouterr()
    output = printed.out + printed.err

    assert header(dead, "fivecogs_error_kind") == "processing_error"
    assert "RuntimeError: a bug (3)" in output  # the traceback is there, for operators
    assert marker not in output  # but not the locals of its frames
