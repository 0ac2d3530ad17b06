"""The bench's backlogs are valid events (each value passes its contract, each key is its type's key field,
every id is unique) and say exactly what they must cause."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from fivecogs_ops.bench.chain import build_chain
from fivecogs_ops.bench.fresh import Stage
from fivecogs_ops.bench.records import Record, Writer
from fivecogs_ops.bench.workloads import BUILDERS, SUBSCRIBERS, Workload
from fivecogs_shared.contracts import INTERNAL_EVENT_TYPES, PARTNER_EVENT_TYPES, events_topic, ingest_topic


def build(cog: str, records: int) -> tuple[Stage, Workload]:
    stage = Stage(cog, cog, "abc123")
    return stage, BUILDERS[cog](Writer(stage.tag, stage.partner), records)


def check_valid(record: Record, stage: Stage) -> None:
    ce_type, source = record.header("ce_type"), record.header("ce_source")
    if ce_type in PARTNER_EVENT_TYPES:
        kind = PARTNER_EVENT_TYPES[ce_type]
        assert record.topic == ingest_topic(kind.cog, stage.partner)
        assert source == f"partner/{stage.partner}"
    else:
        kind = INTERNAL_EVENT_TYPES[ce_type]  # type: ignore[assignment]
        assert record.topic == events_topic(kind.cog)
        assert source == f"fivecogs/{kind.cog}"
    data = kind.model.model_validate_json(record.value)
    assert record.key == str(getattr(data, kind.key_field)).encode()


@pytest.mark.parametrize("cog", sorted(BUILDERS))
@pytest.mark.parametrize("records", [100, 1_001])
def test_every_record_is_valid_and_the_backlog_has_the_size_asked(cog: str, records: int) -> None:
    stage, workload = build(cog, records)
    assert workload.records == records
    for record in [*workload.prelude, *workload.backlog]:
        check_valid(record, stage)
    ids = [r.header("ce_id") for r in [*workload.prelude, *workload.backlog]]
    assert len(set(ids)) == len(ids)


def test_inputs_is_one_percent_registrations_then_deliveries_before_their_batch() -> None:
    _, workload = build("inputs", 1_000)
    types = [r.header("ce_type").split(".")[2] for r in workload.backlog]
    assert types[:10] == ["enterprise"] * 10
    assert workload.events["th.fivecogs.inputs.enterprise.registered.v1"] == 10
    first_batch = types.index("batch")
    assert set(types[10:first_batch]) == {"input"}
    assert sum(workload.events.values()) == 1_000  # one event per record
    assert workload.rows == {"enterprises": 10, "batches": 198, "deliveries": 792}


def test_marketing_orders_have_several_lines_and_are_paid_in_full() -> None:
    _, workload = build("marketing", 1_000)
    orders = [json.loads(r.value) for r in workload.backlog if r.header("ce_type") == "th.fivecogs.order.placed.v1"]
    payments = {
        json.loads(r.value)["order_id"]: json.loads(r.value)["amount_thb"]
        for r in workload.backlog
        if r.header("ce_type") == "th.fivecogs.payment.received.v1"
    }
    assert orders
    assert all(len(o["lines"]) >= 2 for o in orders)
    for order in orders:
        total = sum(Decimal(line["unit_price_thb"]) * line["quantity"] for line in order["lines"])
        assert Decimal(payments[order["order_id"]]) == total
    assert workload.prelude  # the stock and the enterprises come first


def test_communication_notices_every_subscriber_of_every_subject() -> None:
    _, workload = build("communication", 500)
    assert len(workload.prelude) == SUBSCRIBERS
    assert workload.events == {"th.fivecogs.communication.notice.published.v1": 500 * SUBSCRIBERS}
    assert workload.consumed == 500 + SUBSCRIBERS


def test_a_chain_is_complete_and_its_payment_comes_last() -> None:
    stage = Stage("inputs", "chain", "abc123")
    chain = build_chain(Writer(stage.tag, stage.partner), 0)
    for record in [*chain.setup, chain.payment]:
        check_valid(record, stage)
    kinds = [r.header("ce_type").split(".")[2] for r in chain.setup]
    assert kinds == ["enterprise", "input", "batch", "certification", "listing", "order"]
    assert json.loads(chain.payment.value)["order_id"] == chain.order_id
