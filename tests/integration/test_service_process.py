"""A service as it is deployed: its own OS process, HTTP health endpoints, and a clean exit on SIGTERM."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from fivecogs_ops.services import ServiceProcesses

pytestmark = pytest.mark.integration


def test_inputs_process_is_ready_serves_metrics_and_stops_on_sigterm(stack_env, tmp_path) -> None:
    processes = ServiceProcesses(env=stack_env.as_env(), log_dir=tmp_path, ports={"inputs": 18181})
    processes.start("inputs")
    try:
        processes.wait_ready(["inputs"], timeout=60)
        assert httpx.get(processes.url("inputs", "/healthz")).json() == {"status": "ok", "service": "inputs"}
        ready = httpx.get(processes.url("inputs", "/readyz")).json()
        assert ready["checks"] == {"broker": True, "database": True, "partitions_assigned": True}
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
