"""`fivecogs held list` without a database: what it prints for held events (the table, the summary lines, the JSON),
how it reads its arguments, and its exit code when the database cannot be reached."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console
from typer.testing import CliRunner

from fivecogs_ops.cli import app
from fivecogs_ops.held import (
    HeldEvent,
    ReasonSummary,
    ServiceHeld,
    ServiceSchema,
    held_json,
    page_json,
    reason_filter,
    service_schemas,
)
from fivecogs_ops.held_cli import show

HELD_AT = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
TOPIC = "fivecogs.inputs.ingest.cdd-nan"


def event(n: int, reason: str, awaits: str, held: float, expires_in: float) -> HeldEvent:
    return HeldEvent(
        seq=n,
        reason=reason,
        awaits=awaits,
        source="partner/cdd-nan",
        event_id=f"0000000{n}-6c1e-4b57-9d1a-2f7f0c1e5a3b",
        event_type="th.fivecogs.input.delivered.v1",
        detail="enterprise ent-9 is not registered",
        topic=TOPIC,
        partition=n % 3,
        offset=1200 + n,
        held_at=HELD_AT,
        expires_at=HELD_AT + timedelta(seconds=300),
        held_seconds=held,
        expires_in_seconds=expires_in,
    )


def found() -> list[ServiceHeld]:
    inputs = ServiceHeld(
        "inputs",
        "inputs",
        2,
        [ReasonSummary("rule:missing_delivery", 1, 12.0), ReasonSummary("rule:unknown_enterprise", 1, 250.4)],
        [
            event(1, "rule:unknown_enterprise", "enterprise:ent-9", 250.4, 49.6),
            event(2, "rule:missing_delivery", "delivery:b-1:b-1-d2", 12.0, -30.0),
        ],
    )
    return [inputs, ServiceHeld("knowledge", "knowledge", 0), ServiceHeld("marketing", "marketing", None)]


def console(width: int = 120) -> Console:
    return Console(record=True, width=width, color_system=None, file=io.StringIO())


def printed(width: int = 120) -> str:
    out = console(width)
    show(out, found())
    return out.export_text()


def test_a_summary_line_per_service_then_every_held_event() -> None:
    text = printed()
    lines = text.splitlines()
    assert lines[0] == (
        "inputs: 2 held · rule:missing_delivery 1, oldest 12s · rule:unknown_enterprise 1, oldest 4m 10s"
    )
    assert lines[1] == "knowledge: 0 held"
    assert lines[2].startswith("marketing: no held table in schema marketing")
    for shown in (
        "enterprise:ent-9",
        "delivery:b-1:b-1-d2",
        "00000001-6c1e-4b57-9d1a-2f7f0c1e5a3b",  # whole: an operator quotes it to the partner
        "th.fivecogs.input.delivered.v1",
        "partner/cdd-nan",
        TOPIC,
        "1@1201",  # partition@offset, under its topic
        "2@1202",
        "4m 10s",  # held for
        "50s",  # expires in
        "overdue 30s",  # past its expiry and not rejected yet: is the service running?
    ):
        assert shown in text, shown
    assert "more" not in text  # everything held is listed


def test_a_summary_line_is_never_folded_even_on_a_narrow_terminal() -> None:
    [first, *_] = printed(width=60).splitlines()
    assert first.endswith("rule:unknown_enterprise 1, oldest 4m 10s")


def test_a_cut_list_says_so() -> None:
    [inputs, *_] = found()
    cut = ServiceHeld("inputs", "inputs", 5_000, inputs.by_reason, inputs.events)
    out = console()
    show(out, [cut])
    assert "inputs: the oldest 2 of 5,000 shown; --limit for more" in out.export_text()


def test_nothing_held() -> None:
    out = console()
    show(out, [ServiceHeld("inputs", "test_inputs_1", 0)], "rule:unknown_enterprise")
    assert out.export_text().splitlines() == [
        "inputs: 0 held  (schema test_inputs_1)",
        "no events held for rule:unknown_enterprise",
    ]


def test_the_json_has_every_field_and_counts() -> None:
    body = held_json(found())
    assert body["count"] == 2
    inputs, knowledge, marketing = body["services"]
    assert (inputs["count"], inputs["shown"], inputs["oldest_seconds"]) == (2, 2, 250.4)
    assert inputs["by_reason"] == [
        {"reason": "rule:missing_delivery", "count": 1, "oldest_seconds": 12.0},
        {"reason": "rule:unknown_enterprise", "count": 1, "oldest_seconds": 250.4},
    ]
    assert inputs["events"][0] == {
        "service": "inputs",
        "reason": "rule:unknown_enterprise",
        "awaits": "enterprise:ent-9",
        "source": "partner/cdd-nan",
        "event_id": "00000001-6c1e-4b57-9d1a-2f7f0c1e5a3b",
        "event_type": "th.fivecogs.input.delivered.v1",
        "detail": "enterprise ent-9 is not registered",
        "topic": TOPIC,
        "partition": 1,
        "offset": 1201,
        "held_at": "2026-12-03T08:00:00+00:00",
        "expires_at": "2026-12-03T08:05:00+00:00",
        "held_seconds": 250.4,
        "expires_in_seconds": 49.6,
    }
    assert (knowledge["count"], knowledge["events"], knowledge["oldest_seconds"]) == (0, [], None)
    assert marketing["count"] is None  # no table: not the same as none held
    json.dumps(body)  # all of it serialisable


def test_the_page_gets_counts_by_reason_only() -> None:
    [inputs, *_] = page_json(found())
    assert inputs == {
        "service": "inputs",
        "schema": "inputs",
        "count": 2,
        "by_reason": [
            {"reason": "rule:missing_delivery", "count": 1, "oldest_seconds": 12.0, "expires_in_seconds": None},
            {"reason": "rule:unknown_enterprise", "count": 1, "oldest_seconds": 250.4, "expires_in_seconds": None},
        ],
    }


def test_a_reason_may_be_given_without_its_rule_prefix() -> None:
    assert reason_filter("unknown_enterprise") == "rule:unknown_enterprise"
    assert reason_filter("rule:unknown_enterprise") == "rule:unknown_enterprise"
    assert reason_filter(None) is None


def test_schemas_are_the_services_own() -> None:
    schemas = service_schemas(environ={"FIVECOGS_INPUTS_DB_SCHEMA": "inputs_blue"})
    assert schemas[:2] == (ServiceSchema("inputs", "inputs_blue"), ServiceSchema("knowledge", "knowledge"))
    assert len(schemas) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [(["weather"], "unknown cog 'weather' (choices: inputs,"), (["--schema", "blue"], "give the COG too")],
)
def test_bad_arguments_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["held", "list", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert message in result.output


def test_an_unreachable_database_is_an_error_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(app, ["held", "list", "inputs", "--json"])
    assert result.exit_code == 1
    assert "error: held events could not be read" in result.stderr
    assert result.stdout == ""  # no half-made JSON for a script to parse


def test_help_says_what_it_lists() -> None:
    result = CliRunner().invoke(app, ["held", "list", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    prose = " ".join(result.output.split())  # help is wrapped to the terminal
    for words in ("the reference it awaits", "--reason", "--json", "DATABASE_URL", "Exit 0; 1 when the database"):
        assert words in prose, words


def test_at_80_columns_ids_topics_and_types_are_whole() -> None:
    long_topic = "fivecogs.communication.ingest.cdd-nakhon-si-thammarat"
    [inputs, *rest] = found()
    events = [dataclasses.replace(e, topic=long_topic, source="partner/cdd-nakhon-si-thammarat") for e in inputs.events]
    out = console(80)
    show(out, [dataclasses.replace(inputs, events=events), *rest])
    words = out.export_text().split()
    for whole in (
        long_topic,
        "partner/cdd-nakhon-si-thammarat",
        "00000001-6c1e-4b57-9d1a-2f7f0c1e5a3b",
        "th.fivecogs.input.delivered.v1",
        "rule:unknown_enterprise",
        "enterprise:ent-9",
        "delivery:b-1:b-1-d2",
    ):
        assert whole in words, whole
    assert all(len(line) <= 80 for line in out.export_text().splitlines()[3:])  # the table (summaries never fold)
