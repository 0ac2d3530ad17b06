"""Comparing the chain with the model: report deltas field by field, answers and dead letters one by one, and the
topics the catch-up watch covers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from fivecogs_ops.simulate.catchup import consumed_topics, watched
from fivecogs_ops.simulate.collector import Seen
from fivecogs_ops.simulate.compare import (
    Difference,
    answers_seen,
    dead_letters_seen,
    foreign_consumers,
    foreign_records,
    holds_seen,
    report_differences,
    tally,
)
from fivecogs_ops.simulate.figures import Report, Row
from fivecogs_ops.simulate.model import Answer, DeadLetter
from fivecogs_shared.contracts import COGS, UPSTREAM, events_topic, ingest_topic
from fivecogs_shared.contracts.topics import subscription_pattern


def _body(name_field: str, rows: dict[str, dict[str, object]]) -> dict[str, object]:
    listed = [{name_field: name, **row} for name, row in rows.items()]
    totals = Row()
    for row in listed:
        totals = totals + Row.from_json(row)
    return {"rows": listed, "totals": totals.to_json()}


def _report(**provinces: dict[str, object]) -> Report:
    rows = {name.replace("_", " "): Row.from_json(row) for name, row in provinces.items()}
    return Report.of_provinces(rows)


def test_expected_is_what_was_there_plus_what_the_scenario_adds() -> None:
    before = _report(Phetchaburi={"enterprises": 2, "revenue_thb": "100.50", "notices": 3})
    delta = _report(Phetchaburi={"enterprises": 1, "revenue_thb": "0.25"}, Nan={"enterprises": 1, "notices": 2})
    expected = before.plus(delta)
    assert expected.provinces["Phetchaburi"].revenue_thb == Decimal("100.75")
    assert expected.provinces["Nan"].notices == 2
    assert expected.regions["central"].enterprises == 3
    assert expected.regions["north"].enterprises == 1
    assert expected.province_totals.enterprises == expected.region_totals.enterprises == 4


def test_a_report_equal_to_the_expectation_has_no_differences() -> None:
    expected = _report(Nan={"enterprises": 1, "margin_thb": "-3.10", "members_income_thb": "0.00"})
    provinces = _body("province", {"Nan": {"enterprises": 1, "margin_thb": "-3.10", "region": "north"}})
    regions = _body("region", {"north": {"enterprises": 1, "margin_thb": "-3.10"}})
    assert report_differences(expected, Report.from_json(provinces, regions)) == []


def test_each_differing_field_is_named() -> None:
    expected = _report(Nan={"enterprises": 1, "revenue_thb": "10.00"}, Phitsanulok={"enterprises": 1})
    provinces = _body("province", {"Nan": {"enterprises": 1, "revenue_thb": "10.01"}, "Trang": {"enterprises": 2}})
    regions = _body("region", {"north": {"enterprises": 2, "revenue_thb": "10.00"}})
    actual = Report.from_json(provinces, regions)
    differences = report_differences(expected, actual)
    assert Difference("provinces", "Nan", "revenue_thb", "10.00", "10.01") in differences
    assert Difference("provinces", "Phitsanulok", "enterprises", "1", "—") in differences
    assert Difference("provinces", "Trang", "enterprises", "—", "2") in differences
    assert Difference("provinces", "totals", "enterprises", "2", "3") in differences
    assert not [d for d in differences if d.table == "regions"]


def test_answers_and_dead_letters_are_counted_one_by_one() -> None:
    said = Answer("p", "rejected", "e-1", "schema")
    assert tally([said], [said]).matches
    twice = tally([said], [said, said])
    assert twice.unexpected == ("rejected e-1 from p: schema",)
    assert tally([said], [said, said], distinct=True).matches
    missing = tally([said, DeadLetter("t.dlq", "e-1", "schema")], [said])
    assert missing.missing == ("t.dlq e-1: schema",)
    assert (missing.expected, missing.seen) == (2, 1)
    other = Answer("p", "rejected", "e-2", "unknown_type")
    excused = tally([said], [said, other], theirs=lambda item: item == other)
    assert excused.matches
    assert excused.theirs == ("rejected e-2 from p: unknown_type",)


def _record(topic: str, value: object, key: bytes | None = b"k", **headers: Any) -> Seen:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Seen(topic, 0, 0, key, raw, tuple((k, v.encode()) for k, v in headers.items()))


def test_only_this_runs_answers_are_read() -> None:
    rejected = "th.fivecogs.partner.event.rejected.v1"
    records = [
        _record("fivecogs.feedback.p", {"event_id": "run-1-ev1", "reason": "schema"}, b"p", ce_type=rejected),
        _record("fivecogs.feedback.p", {"event_id": "", "reason": "malformed"}, b"p", ce_type=rejected),
        _record("fivecogs.feedback.other", {"event_id": "", "reason": "malformed"}, b"other", ce_type=rejected),
        _record("fivecogs.feedback.p", {"event_id": "x-ev1", "reason": "schema"}, b"p", ce_type=rejected),
        _record("fivecogs.inputs.events", {"event_id": "run-1-ev2", "reason": "schema"}, b"p", ce_type=rejected),
        _record(
            "fivecogs.feedback.m",
            {"order_id": "run-1-ord1", "buyer_id": "b", "total_thb": "12.00"},
            b"m",
            ce_type="th.fivecogs.order.accepted.v1",
        ),
    ]
    assert answers_seen(records, "run-1", frozenset({"p", "m"})) == [
        Answer("p", "rejected", "run-1-ev1", "schema"),
        Answer("p", "rejected", "", "malformed"),
        Answer("m", "order.accepted", "run-1-ord1", "12.00"),
    ]


def test_dead_letters_count_only_when_the_chain_wrote_them() -> None:
    dlq = "fivecogs.inputs.ingest.dlq"
    mine: dict[str, Any] = {"fivecogs_error_kind": "schema", "fivecogs_consumer_group": "fivecogs-inputs"}
    records = [
        _record(dlq, b"{", ce_id="run-1-ev1", **mine),
        _record(dlq, b"{", key=b"run-1-ent-ghost-01", **mine),
        _record(
            dlq,
            b"{",
            ce_id="run-1-ev1",
            fivecogs_error_kind="schema",
            fivecogs_consumer_group="test-inputs-1",
            fivecogs_original_topic="fivecogs.inputs.ingest",
        ),
        _record(dlq, b"{", ce_id="other-ev1", **mine),
    ]
    assert dead_letters_seen(records, "run-1") == [
        DeadLetter(dlq, "run-1-ev1", "schema"),
        DeadLetter(dlq, "key:run-1-ent-ghost-01", "schema"),
    ]
    assert foreign_consumers(records, "run-1") == {"test-inputs-1": {"fivecogs.inputs.ingest"}}


def test_records_of_others_are_noticed() -> None:
    records = [
        _record("fivecogs.inputs.ingest", b"{}", ce_id="run-1-ev1"),
        _record("fivecogs.inputs.ingest", b"{}", key=b"run-1-ent-1"),  # no ce_id, but our key
        _record("fivecogs.inputs.ingest", b"{}", ce_id="someone-else"),
        _record("fivecogs.knowledge.events", b"{}", ce_correlationid="run-1-ev1"),
        _record("fivecogs.knowledge.events", b"{}", ce_correlationid="a-test"),
        _record("fivecogs.partner.feedback", b"{}", ce_id="whatever"),
    ]
    assert foreign_records(records, "run-1") == 2


@pytest.mark.parametrize("cog", COGS)
def test_the_catch_up_watch_reads_what_each_service_consumes(cog: str) -> None:
    # Tests may look at the services; the simulator itself never imports them.
    import importlib

    definition = importlib.import_module(f"fivecogs_{cog}.app").DEFINITION
    assert set(UPSTREAM[cog]) == set(definition.upstream)
    assert definition.sources().pattern() == subscription_pattern(cog)
    topics = [ingest_topic(cog, "coop-1"), f"{ingest_topic(cog, 'coop-1')}.dlq", *map(events_topic, COGS)]
    assert consumed_topics(cog, topics) == [ingest_topic(cog, "coop-1"), *map(events_topic, UPSTREAM[cog])]
    assert all(watched(topic) for topic in topics)


HELD = "th.fivecogs.partner.event.held.v1"
ACCEPTED = "th.fivecogs.partner.event.accepted.v1"
REJECTED = "th.fivecogs.partner.event.rejected.v1"


def _feedback(partner: str, ce_type: str, event_id: str, at: float = 0.0, **data: str) -> Seen:
    body = {"event_id": event_id, "event_type": "th.fivecogs.order.placed.v1", **data}
    if ce_type == HELD:
        body |= {"awaits": "listing:online:p1", "reason": "rule:not_listed", "until": "2026-12-03T15:30:00+00:00"}
    return Seen(
        f"fivecogs.feedback.{partner}",
        0,
        0,
        partner.encode(),
        json.dumps(body).encode(),
        (("ce_type", ce_type.encode()),),
        timestamp=at,
    )


def test_accepted_answers_are_final_outcomes_and_held_notices_are_not() -> None:
    records = [
        _feedback("m", HELD, "run-1-ev1"),
        _feedback("m", ACCEPTED, "run-1-ev1"),
        _feedback("m", ACCEPTED, "run-1-ev2"),
    ]
    assert answers_seen(records, "run-1", frozenset({"m"})) == [
        Answer("m", "accepted", "run-1-ev1", "th.fivecogs.order.placed.v1"),
        Answer("m", "accepted", "run-1-ev2", "th.fivecogs.order.placed.v1"),
    ]


def test_every_held_notice_must_be_followed_by_a_final_outcome() -> None:
    records = [
        _feedback("m", HELD, "run-1-ev1", at=10.0),
        _feedback("m", HELD, "run-1-ev2", at=11.0),
        _feedback("m", ACCEPTED, "run-1-ev1", at=14.5),  # released 4.5 s later
        _feedback("m", HELD, "run-1-ev3", at=12.0),
        _feedback("m", REJECTED, "run-1-ev3", at=42.0, reason="rule:not_listed", detail=""),  # expired
        _feedback("b", HELD, "run-1-ev4"),  # another partner's feedback topic: its own order
        _feedback("m", ACCEPTED, "run-1-ev4"),  # an answer on another topic does not resolve it
        _feedback("m", HELD, "other-ev9"),  # not this run's
    ]
    holds = holds_seen(records, "run-1")
    assert holds.unresolved == [
        "held run-1-ev4 from b: no accepted or rejected after it (held until 15:30:00)",
        "held run-1-ev2 from m: no accepted or rejected after it (held until 15:30:00)",
    ]
    assert (len(holds.held), len(holds.released), len(holds.refused)) == (4, 1, 1)
    assert holds.longest_wait == 4.5


def test_a_final_outcome_before_the_held_notice_does_not_resolve_it() -> None:
    holds = holds_seen([_feedback("m", ACCEPTED, "run-1-ev1"), _feedback("m", HELD, "run-1-ev1")], "run-1")
    assert len(holds.unresolved) == 1
