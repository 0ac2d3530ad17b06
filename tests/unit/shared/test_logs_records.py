"""Lines about a record name it: event id, type, partner, correlation id, and where it sits (issue 13)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from fivecogs_shared import outbox
from fivecogs_shared.consumer import BatchProcessor, Sources, about, span
from fivecogs_shared.errors import BadRecord
from fivecogs_shared.metrics import ServiceMetrics
from fivecogs_shared.service import _problems
from fivecogs_shared.settings import load_settings
from fivecogs_shared.uow import UnitOfWork

TOPIC = "fivecogs.inputs.ingest.coop-1"
HEADERS = [
    ("ce_id", b"evt-1"),
    ("ce_type", b"th.fivecogs.enterprise.registered.v1"),
    ("ce_source", b"partner/coop-1"),
    ("ce_correlationid", b"chain-7"),
]


@dataclass(frozen=True)
class Record:
    headers: list[tuple[str, bytes]] = field(default_factory=lambda: list(HEADERS))
    value: bytes = b"{}"
    key: bytes = b"ent-1"
    topic: str = TOPIC
    partition: int = 1
    offset: int = 42


def test_a_dead_letter_line_names_the_event_its_partner_and_its_chain() -> None:
    sources = Sources("inputs", {}, {})
    processor = BatchProcessor("inputs", cast(Any, None), sources, {}, ServiceMetrics(), "fivecogs-inputs")
    uow = UnitOfWork(conn=cast(Any, None), cog="inputs")
    with capture_logs() as logs:
        processor._dead_letter(uow, Record(), BadRecord("schema", "members: field required"), sources[TOPIC])

    [line] = [entry for entry in logs if entry["event"] == "record dead-lettered"]
    assert line == {
        "event": "record dead-lettered",
        "log_level": "warning",
        "kind": "schema",
        "detail": "members: field required",
        "event_id": "evt-1",
        "ce_type": "th.fivecogs.enterprise.registered.v1",
        "ce_source": "partner/coop-1",
        "correlation_id": "chain-7",
        "partner": "coop-1",
        "topic": TOPIC,
        "partition": 1,
        "offset": 42,
    }
    assert uow.tally == {"dead_lettered": 1}


def test_without_a_correlation_header_the_chain_is_the_event_itself() -> None:
    record = Record(headers=HEADERS[:3])
    assert about(record, Sources("inputs", {}, {})[TOPIC])["correlation_id"] == "evt-1"


def test_a_hostile_header_is_cut_short_in_the_line() -> None:
    record = Record(headers=[("ce_id", b"x" * 1024), ("ce_source", b"\xff\xfe")])
    fields = about(record, Sources("inputs", {}, {})[TOPIC])
    assert len(str(fields["event_id"])) == 200
    assert fields["ce_source"] == "\ufffd\ufffd"  # not UTF-8: replaced, never an error
    assert fields["ce_type"] == ""


def test_a_span_gives_each_partition_its_first_and_last_offsets() -> None:
    records = [Record(partition=p, offset=o) for p, o in ((1, 7), (0, 3), (1, 5), (1, 9), (0, 4))]
    assert span(records) == [f"{TOPIC}/1@5-9", f"{TOPIC}/0@3-4"]


def test_a_published_line_names_the_event_its_chain_and_where_kafka_put_it() -> None:
    row = {
        "topic": "fivecogs.inputs.events",
        "header_names": ["ce_id", "ce_type", "ce_correlationid", "content-type"],
        "header_values": [b"evt-2", b"fivecogs.inputs.enterprise.registered.v1", b"chain-7", b"application/json"],
    }
    sent = SimpleNamespace(partition=2, offset=11)
    assert outbox._published(cast(Any, row), sent) == {
        "event_id": "evt-2",
        "ce_type": "fivecogs.inputs.enterprise.registered.v1",
        "correlation_id": "chain-7",
        "topic": "fivecogs.inputs.events",
        "partition": 2,
        "offset": 11,
    }


@pytest.fixture
def no_trace_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("FIVECOGS_TRACE_EVENTS", "FIVECOGS_INPUTS_TRACE_EVENTS", "FIVECOGS_INPUTS_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_events_are_traced_only_when_asked(no_trace_variables: pytest.MonkeyPatch) -> None:
    assert not load_settings("inputs").tracing
    no_trace_variables.setenv("FIVECOGS_TRACE_EVENTS", "true")
    assert load_settings("inputs").tracing
    assert load_settings("management").tracing
    no_trace_variables.setenv("FIVECOGS_INPUTS_TRACE_EVENTS", "false")  # the service's own variable wins
    assert not load_settings("inputs").tracing
    no_trace_variables.setenv("FIVECOGS_INPUTS_LOG_LEVEL", "debug")  # level debug traces too
    assert load_settings("inputs").tracing


def test_a_dead_letter_copy_of_a_partner_record_is_published_under_the_record_s_own_id() -> None:
    row = {"topic": f"{TOPIC}.dlq", "header_names": ["ce_id", "ce_type"], "header_values": [b"evt-1", b"t.v1"]}
    published = outbox._published(cast(Any, row), SimpleNamespace(partition=0, offset=3))
    assert published["correlation_id"] == "evt-1"


def test_a_log_level_is_one_of_logging_s_own(no_trace_variables: pytest.MonkeyPatch) -> None:
    no_trace_variables.setenv("FIVECOGS_INPUTS_LOG_LEVEL", "warning")
    assert load_settings("inputs").log_level == "WARNING"
    no_trace_variables.setenv("FIVECOGS_INPUTS_LOG_LEVEL", "verbose")
    with pytest.raises(ValidationError, match="must be one of debug, info, warning, error, critical"):
        load_settings("inputs")


def test_refused_settings_are_named_by_the_variables_that_set_them(no_trace_variables: pytest.MonkeyPatch) -> None:
    no_trace_variables.setenv("FIVECOGS_INPUTS_LOG_LEVEL", "verbose")
    no_trace_variables.setenv("FIVECOGS_INPUTS_HOLD_SECONDS", "-1")
    with pytest.raises(ValidationError) as refused:
        load_settings("inputs")
    assert sorted(_problems(refused.value, "inputs")) == [
        "FIVECOGS_INPUTS_HOLD_SECONDS: Input should be greater than 0",
        "FIVECOGS_INPUTS_LOG_LEVEL: Value error, must be one of debug, info, warning, error, critical",
    ]
