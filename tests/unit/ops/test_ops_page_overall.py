"""The ops page's overall status on synthetic samples: each thing an operator must act on, alone and together."""

from __future__ import annotations

from typing import Any

import pytest

from fivecogs_ops.lag.overall import Thresholds, overall, severity

DLQ = "fivecogs.inputs.ingest.acme.dlq"


def sample(**parts: Any) -> dict[str, Any]:
    """All quiet: one OK group, no dead letters, empty outboxes, nothing held."""
    quiet: dict[str, Any] = {
        "error": None,
        "status": "OK",
        "groups": [{"group": "fivecogs-inputs", "status": "OK", "reason": "lag 0"}],
        "dlq": [{"topic": DLQ, "waiting": 0, "total": 4}],
        "outbox": [{"service": "inputs", "schema": "inputs", "rows": 0, "oldest_seconds": None, "parked": 0}],
        "held": [{"service": "inputs", "schema": "inputs", "count": 0, "by_reason": []}],
    }
    return quiet | parts


def held(expires_in: float | None, count: int = 2) -> list[dict[str, Any]]:
    reason = {"reason": "rule:unknown_enterprise", "count": count, "oldest_seconds": 250.0}
    return [
        {
            "service": "inputs",
            "schema": "inputs",
            "count": count,
            "by_reason": [reason | {"expires_in_seconds": expires_in}],
        }
    ]


def test_all_quiet_is_ok_with_no_reasons() -> None:
    assert overall(sample()) == {"status": "OK", "reasons": []}


def test_dead_letters_waiting_warn_per_topic() -> None:
    dlq = [
        {"topic": DLQ, "waiting": 3, "total": 8},
        {"topic": "fivecogs.inputs.ingest.zeta.dlq", "waiting": 1, "total": 1},
        {"topic": "fivecogs.knowledge.ingest.acme.dlq", "waiting": 0, "total": 5},  # all replayed
    ]
    assert overall(sample(dlq=dlq)) == {
        "status": "WARN",
        "reasons": [f"3 dead letters waiting in {DLQ}", "1 dead letter waiting in fivecogs.inputs.ingest.zeta.dlq"],
    }


def test_parked_outbox_rows_warn() -> None:
    outbox = [{"service": "inputs", "schema": "inputs_blue", "rows": 0, "oldest_seconds": None, "parked": 2}]
    assert overall(sample(outbox=outbox)) == {
        "status": "WARN",
        "reasons": ["2 outbox rows parked in inputs (Kafka refused them)"],
    }


def test_an_old_outbox_row_warns_from_the_threshold_on() -> None:
    def outbox(age: float) -> list[dict[str, Any]]:
        return [{"service": "inputs", "schema": "inputs", "rows": 12, "oldest_seconds": age, "parked": 0}]

    limits = Thresholds(outbox_age_seconds=30)
    assert overall(sample(outbox=outbox(29.9)), limits)["status"] == "OK"  # a relay catching up
    assert overall(sample(outbox=outbox(125)), limits) == {
        "status": "WARN",
        "reasons": ["12 outbox rows unsent in inputs, the oldest 2m 05s old"],
    }


def test_a_service_without_tables_is_not_a_problem() -> None:
    outbox = [{"service": "marketing", "schema": "marketing", "rows": None, "oldest_seconds": None, "parked": None}]
    none_held: list[dict[str, Any]] = [{"service": "marketing", "schema": "marketing", "count": None, "by_reason": []}]
    assert overall(sample(outbox=outbox, held=none_held)) == {"status": "OK", "reasons": []}


def test_held_events_warn_close_to_the_end_of_their_wait() -> None:
    limits = Thresholds(held_expiry_seconds=60)
    assert overall(sample(held=held(61)), limits)["status"] == "OK"
    assert overall(sample(held=held(45)), limits) == {
        "status": "WARN",
        "reasons": ["2 held events in inputs (unknown_enterprise): the first one's wait ends in 45s"],
    }


def test_held_events_past_their_end_ask_whether_the_service_runs() -> None:
    assert overall(sample(held=held(-30, count=1))) == {
        "status": "WARN",
        "reasons": [
            "1 held event in inputs (unknown_enterprise): the first one's wait ended 30s ago (is inputs running?)"
        ],
    }


def test_a_group_not_ok_gives_its_status_and_reason() -> None:
    groups = [
        {"group": "fivecogs-inputs", "status": "OK", "reason": "lag 0"},
        {"group": "fivecogs-knowledge", "status": "STOP", "reason": "fivecogs.inputs.events/0: no member, lag 15"},
    ]
    assert overall(sample(status="STOP", groups=groups)) == {
        "status": "STOP",
        "reasons": ["fivecogs-knowledge STOP: fivecogs.inputs.events/0: no member, lag 15"],
    }


@pytest.mark.parametrize("part", ["dlq", "outbox", "held"])
def test_what_could_not_be_read_is_unknown(part: str) -> None:
    found = overall(sample(**{part: None}))
    assert found["status"] == "UNKNOWN"
    assert len(found["reasons"]) == 1
    assert "not read" in found["reasons"][0]


def test_kafka_not_sampled_is_unknown_with_the_error() -> None:
    found = overall(sample(error="Kafka: KafkaConnectionError()", status="UNKNOWN", groups=[]))
    assert found == {"status": "UNKNOWN", "reasons": ["consumer lag not sampled: Kafka: KafkaConnectionError()"]}


def test_the_worst_wins_and_every_reason_is_listed_in_order() -> None:
    groups = [{"group": "fivecogs-inputs", "status": "STALL", "reason": "committed offset not moving"}]
    outbox = [{"service": "inputs", "schema": "inputs", "rows": 3, "oldest_seconds": 600.0, "parked": 1}]
    found = overall(
        sample(
            status="STALL", groups=groups, dlq=[{"topic": DLQ, "waiting": 8, "total": 8}], outbox=outbox, held=held(5)
        )
    )
    assert found["status"] == "STALL"
    assert found["reasons"] == [
        "fivecogs-inputs STALL: committed offset not moving",
        f"8 dead letters waiting in {DLQ}",
        "1 outbox row parked in inputs (Kafka refused them)",
        "3 outbox rows unsent in inputs, the oldest 10m 00s old",
        "2 held events in inputs (unknown_enterprise): the first one's wait ends in 5s",
    ]


def test_warnings_and_an_unread_part_are_unknown_but_a_stop_stays_stop() -> None:
    warned = sample(dlq=[{"topic": DLQ, "waiting": 1, "total": 1}], held=None)
    assert overall(warned)["status"] == "UNKNOWN"
    stopped = sample(status="STOP", groups=[{"group": "g", "status": "STOP", "reason": "gone"}], held=None)
    assert overall(stopped)["status"] == "STOP"


def test_a_status_the_page_does_not_know_is_never_ok() -> None:
    assert severity("SOMETHING_NEW") == severity("UNKNOWN") > severity("WARN") > severity("OK")
    groups = [{"group": "g", "status": "SOMETHING_NEW", "reason": "a newer rule"}]
    assert overall(sample(status="SOMETHING_NEW", groups=groups))["status"] == "SOMETHING_NEW"
