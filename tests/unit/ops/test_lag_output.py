"""What `fivecogs lag` and the ops page's /metrics show of a report: the table at 80 columns keeps every reason,
the gauges say what the CLI says, a mistyped group gets a did-you-mean, tools' groups stay out of view."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from typer.testing import CliRunner

from fivecogs_ops.lag.__main__ import app
from fivecogs_ops.lag.cli import no_such_group
from fivecogs_ops.lag.estimate import tables
from fivecogs_ops.lag.metrics import render as metrics
from fivecogs_ops.lag.page import PageConfig, create_app
from fivecogs_ops.lag.report import Report, build_report
from fivecogs_ops.lag.rules import Status
from fivecogs_ops.lag.sampling import Sample, Snapshot, service_groups
from fivecogs_ops.lag.store import SampleStore
from fivecogs_ops.lag.table import render
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.kafka_admin import GroupDescription, Member

DEAD, ALIVE = "fivecogs-knowledge", "fivecogs-marketing"
EVENTS = "fivecogs.inputs.events"
PARTNER = "th.fivecogs.partners.cdd-nakhon-si-thammarat.inputs"  # a long partner topic name


def report(topic: str = EVENTS) -> Report:
    """A dead group (no members) behind on every partition, one record's timestamp read; a live one caught up."""
    history = [Sample(g, topic, p, 0.0, 1000 + p, 1000 + p) for g in (DEAD, ALIVE) for p in range(3)]
    latest = [Sample(DEAD, topic, p, 40.0, 1000 + p, 1012 + 7 * p) for p in range(3)]
    latest += [Sample(ALIVE, topic, p, 40.0, 1020 + p, 1020 + p) for p in range(3)]
    member = Member("fivecogs-marketing", "/10.0.0.7", tuple(f"{topic}/{p}" for p in range(3)))
    groups = {DEAD: GroupDescription(DEAD, "Empty", ()), ALIVE: GroupDescription(ALIVE, "Stable", (member,))}
    snapshot = Snapshot(40.0, latest, groups)
    return build_report(snapshot, history, tables([*history, *latest]), 30.0, {(topic, 1, 1001): 12.5})


def shown(rendered: Report, width: int, every: bool = True) -> str:
    console = Console(width=width, record=True)
    console.print(render(rendered, width, every))
    return console.export_text()


def words(text: str) -> str:
    return " ".join(text.split())


def test_caught_up_partitions_are_one_line_unless_all_are_asked_for() -> None:
    text = shown(report(), 80, every=False)
    alive = text[text.index(ALIVE) :]
    assert "all 3 partitions caught up (--all-partitions lists them)" in alive
    assert "caught up" not in text[: text.index(ALIVE)]  # the dead group's rows are all behind: each shown
    assert f"{EVENTS}/0" not in alive
    assert text.count("no members") == 4  # the dead group's title and each of its three rows


def test_at_80_columns_every_reason_is_shown_with_every_column_kept() -> None:
    text = shown(report(), 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    header = next(line for line in text.splitlines() if "topic/partition" in line)
    assert words(header) == "topic/partition committed end lag behind status"  # the trend arrow has no header
    for group in report().groups:
        for p in group.partitions:  # under its row: nothing else on the reason's lines, so it reads whole
            assert f"{p.topic}/{p.partition}" in text
            assert words(p.reason) in words(text)
    assert "no members: nothing consumes lag 12" in words(text)
    assert "~37s" in text  # interpolated between samples (the 1st of 12 records written in 0–40 s)…
    assert " 28s " in text  # …and from the record's timestamp (40 - 12.5, rounded)


def test_a_long_topic_at_80_columns_drops_the_trend_and_end_before_any_reason() -> None:
    text = shown(report(PARTNER), 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    header = next(line for line in text.splitlines() if "topic/partition" in line)
    assert words(header) == "topic/partition committed lag behind status"
    assert all(words(p.reason) in words(text) for g in report(PARTNER).groups for p in g.partitions)
    assert "STOP" in text


def test_a_wide_terminal_gives_the_reason_its_own_column() -> None:
    text = shown(report(), 140)
    header = next(line for line in text.splitlines() if "topic/partition" in line)
    assert words(header) == "topic/partition committed end lag behind status why"
    row = next(line for line in text.splitlines() if f"{EVENTS}/0" in line and "STOP" in line)
    assert row.rstrip().endswith("no members: nothing consumes lag 12")
    assert "↑" in row


def test_the_gauges_say_what_the_cli_says() -> None:
    judged = report()
    body = judged.to_json()  # what `fivecogs lag --json` prints and the page reads
    families = {f.name: f for f in text_string_to_metric_families(metrics(body).decode())}
    groups = {s.labels["group"]: s.value for s in families["fivecogs_consumer_group_status"].samples}
    assert groups == {g["group"]: Status[g["status"]] for g in body["groups"]}
    assert groups == {DEAD: Status.STOP, ALIVE: Status.OK}
    assert "0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP" in families["fivecogs_consumer_group_status"].documentation
    partitions = {
        (s.labels["group"], s.labels["partition"]): s.value
        for s in families["fivecogs_consumer_partition_status"].samples
    }
    assert partitions == {(g.group, str(p.partition)): p.status for g in judged.groups for p in g.partitions}
    lag = {s.labels["group"]: s.value for s in families["fivecogs_consumer_group_lag"].samples}
    assert lag == {DEAD: 12 + 18 + 24, ALIVE: 0}
    seconds = {
        (s.labels["group"], s.labels["estimate"]): s.value
        for s in families["fivecogs_consumer_group_lag_seconds"].samples
    }
    dead = next(g for g in judged.groups if g.group == DEAD)
    assert seconds == {(DEAD, dead.estimate): dead.lag_seconds, (ALIVE, "caught-up"): 0.0}
    assert [s.value for s in families["fivecogs_consumer_lag_sampled"].samples] == [1.0]


def test_a_failed_look_is_a_gauge_not_a_blank() -> None:
    text = metrics({"status": "UNKNOWN", "groups": [], "error": "Kafka: timeout"}).decode()
    assert "fivecogs_consumer_lag_sampled 0.0" in text
    assert "fivecogs_consumer_group_status{" not in text


async def test_the_ops_page_serves_metrics_without_a_token(tmp_path: Path) -> None:
    config = PageConfig(
        KafkaAccess("127.0.0.1:1", "PLAINTEXT"), "postgresql://nobody@127.0.0.1:1/none", SampleStore(tmp_path / "s")
    )
    transport = httpx.ASGITransport(app=create_app(config))  # no lifespan: the sampler never ran
    async with httpx.AsyncClient(transport=transport, base_url="http://ops") as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "fivecogs_consumer_lag_sampled 0.0" in response.text


def test_a_group_named_without_its_prefix_gets_the_full_name() -> None:
    existing = ["fivecogs-inputs", "fivecogs-knowledge", "fivecogs-dlq-replay-inputs"]
    assert no_such_group("inputs", existing) == "no such consumer group 'inputs': did you mean 'fivecogs-inputs'?"
    assert no_such_group("fivecogs-inptus", existing).startswith(
        "unknown consumer group 'fivecogs-inptus': did you mean 'fivecogs-inputs'? (choices: fivecogs-inputs, "
    )
    assert "\n" not in no_such_group("nothing-like-it", existing)


def test_tools_groups_are_not_services() -> None:
    names = ["fivecogs-inputs", "fivecogs-dlq-replay-inputs", "fivecogs-knowledge", "other-app"]
    assert service_groups(names) == ["fivecogs-inputs", "fivecogs-knowledge"]


def test_help_names_only_options_that_exist() -> None:
    runner = CliRunner()
    ops = runner.invoke(app, ["ops", "--help"], env={"COLUMNS": "200"})
    lag = runner.invoke(app, ["lag", "--help"], env={"COLUMNS": "200"})
    assert ops.exit_code == lag.exit_code == 0
    assert "--group" not in ops.output
    assert "--prefix" in ops.output
    assert "--group" in lag.output
    assert "SIGTERM" in lag.output
