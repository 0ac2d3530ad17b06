"""`fivecogs bench` at a tiny size on the test suite's stack (--external): the ceiling, the naive subscriber and
the inputs service drain the same 200 records, every effect is verified, and the JSON has every figure. Nothing
here judges a speed: that is the benchmark's own business."""

from __future__ import annotations

import json
import logging

import pytest
from typer.testing import CliRunner

from fivecogs_ops.cli import app

pytestmark = pytest.mark.integration


def test_a_tiny_bench_verifies_every_stage_and_reports_its_figures(stack_env) -> None:
    env = {**stack_env.kafka.env(), "DATABASE_URL": stack_env.database_url, "COLUMNS": "200"}
    args = ["bench", "--external", "--records", "200", "--large", "0", "--only", "inputs", "--json"]
    aiokafka_level = logging.getLogger("aiokafka").level
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert logging.getLogger("aiokafka").level == aiokafka_level  # quiet while it ran, as it was after
    report = json.loads(result.stdout)
    assert report["verified"] is True
    assert report["partitions"] >= 2
    stages = {row["stage"]: row for row in report["stages"]}
    assert list(stages) == ["ceiling", "naive", "inputs"]
    for row in stages.values():
        assert row["verified"] is True, row["problems"]
        assert row["records"] == 200
        assert row["records_per_second"] > 0
        assert row["cpu_seconds_per_1k"] is not None
        assert row["x_ceiling"] is not None
        assert row["x_naive"] is not None
    assert stages["inputs"]["peak_rss_mib"] > 0  # a process of its own, measured
    assert report["machine"]["cores"] >= 1
    assert "inputs: verified" in result.stderr  # progress goes to stderr, the report alone to stdout
