"""`fivecogs bench` refuses what it cannot run with exit 2 and one line, before starting anything; the meter
reads a live process's memory and CPU; the webhook receiver answers communication's deliveries."""

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


def test_the_webhook_receiver_answers_2xx_and_counts_each_notice_once() -> None:
    import httpx

    from fivecogs_ops.bench.webhooks import NOTICE_ID_HEADER, Receiver

    with Receiver() as receiver:
        for notice in ("n1", "n2", "n1"):  # at least once: a notice may come again
            answer = httpx.post(receiver.url, content=b"{}", headers={NOTICE_ID_HEADER: notice})
            assert answer.status_code == 204
        assert receiver.received == 2


def test_a_cluster_that_cannot_be_reached_exits_3_with_one_line() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "DATABASE_URL": "postgresql://nobody:secret@127.0.0.1:1/none",
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, ["bench", "--external", "--only", "inputs"], env=env)
    assert result.exit_code == 3
    assert "Kafka at 127.0.0.1:1 does not answer" in result.output
    assert "secret" not in result.output
