"""`fivecogs bench` refuses what it cannot run with exit 2 and one line, before starting anything; the meter
reads a live process's memory and CPU."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from fivecogs_ops.bench.measure import ProcessMeter, high_water_mark
from fivecogs_ops.cli import app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "inputs,markting"], "unknown stage 'markting': did you mean 'marketing'?"),
        (["--rates", "25,fast"], "chains per second as whole numbers"),
        (["--rates", "0"], "each 1 or more"),
        (["--records", "10"], "10"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["bench", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_the_meter_reads_this_process() -> None:
    meter = ProcessMeter(os.getpid())
    sum(i * i for i in range(200_000))  # a little CPU to count
    cpu, rss_mib = meter.stop(since=0.0)
    assert cpu >= 0
    assert rss_mib > 1
    assert high_water_mark(os.getpid()) >= 0
