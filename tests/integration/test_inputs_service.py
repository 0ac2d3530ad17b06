"""The inputs service on the real broker and database: the batch journey, idempotency, and bad input."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from fivecogs_inputs.app import DEFINITION
from fivecogs_shared.contracts import events_topic
from tests.support import FEEDBACK, PARTNER, Partner, Tap, data, header, ingest, of_type

pytestmark = pytest.mark.integration

INGEST = ingest("inputs")
REGISTERED = "th.fivecogs.enterprise.registered.v1"
DELIVERED = "th.fivecogs.input.delivered.v1"
PRODUCED = "th.fivecogs.batch.produced.v1"
PRODUCED_V2 = "th.fivecogs.batch.produced.v2"


def _enterprise(enterprise_id: str, members: int = 12) -> dict[str, object]:
    return {
        "enterprise_id": enterprise_id,
        "name": "Ban Khiriwong Dyed Cloth Group",
        "province": "Nakhon Si Thammarat",
        "sector": "processing",
        "members": members,
        "target_poor_households": 4,
    }


def _delivery(n: int, batch_id: str, enterprise_id: str, cost: str, local: bool) -> dict[str, object]:
    return {
        "delivery_id": f"{batch_id}-d{n}",
        "batch_id": batch_id,
        "enterprise_id": enterprise_id,
        "item": "natural dye",
        "quantity": "2.5",
        "unit": "kg",
        "cost_thb": cost,
        "local_source": local,
    }


def _named(batch_id: str, *numbers: int) -> list[str]:
    return [f"{batch_id}-d{n}" for n in numbers]


def _produced(batch_id: str, enterprise_id: str, quantity: int = 40) -> dict[str, object]:
    return {
        "batch_id": batch_id,
        "enterprise_id": enterprise_id,
        "product_id": f"prod-{enterprise_id}",
        "product_name": "Batik scarf",
        "quantity": quantity,
        "unit": "piece",
        "produced_on": "2026-06-29",
    }


async def test_batch_cost_is_the_deliveries_before_production(run_service, stack_env, partner: Partner) -> None:
    ent, batch = f"ent-{uuid.uuid4().hex[:6]}", f"batch-{uuid.uuid4().hex[:6]}"
    async with (
        Tap(stack_env.kafka, events_topic("inputs"), FEEDBACK) as tap,
        run_service(DEFINITION),
    ):
        await partner.send(INGEST, REGISTERED, _enterprise(ent), ent)
        await tap.wait_for(
            lambda r: r.key == ent.encode() and header(r, "ce_type").endswith("enterprise.registered.v1")
        )
        await partner.send(INGEST, DELIVERED, _delivery(1, batch, ent, "1250.50", True), batch)
        await partner.send(INGEST, DELIVERED, _delivery(2, batch, ent, "300.25", False), batch)
        await partner.send(INGEST, PRODUCED, _produced(batch, ent), batch)
        [produced] = await tap.wait_for(
            lambda r: of_type("th.fivecogs.inputs.batch.produced.v1")(r) and r.key == batch.encode()
        )
        late = await partner.send(INGEST, DELIVERED, _delivery(3, batch, ent, "10.00", True), batch)
        [rejected] = await tap.wait_for(lambda r: r.topic == FEEDBACK and data(r).get("event_id") == late)

    body = data(produced)
    assert Decimal(body["cost_thb"]) == Decimal("1550.75")
    assert body["cost_thb"] == "1550.75"  # money travels as a decimal string
    assert Decimal(body["non_local_cost_thb"]) == Decimal("300.25")
    assert body["delivery_ids"] == [f"{batch}-d1", f"{batch}-d2"]
    assert body["province"] == "Nakhon Si Thammarat"
    assert header(produced, "ce_correlationid")  # the chain can be followed
    assert data(rejected)["reason"] == "rule:batch_closed"
    assert rejected.key == PARTNER.encode()


async def test_the_largest_amounts_the_contract_allows_are_kept_to_the_satang(
    run_service, stack_env, partner: Partner
) -> None:
    ent, batch = f"ent-{uuid.uuid4().hex[:6]}", f"batch-{uuid.uuid4().hex[:6]}"
    async with (
        Tap(stack_env.kafka, events_topic("inputs"), FEEDBACK) as tap,
        run_service(DEFINITION),
    ):
        # Sent back to back: the registration (another key, maybe another partition) may come in after the
        # deliveries, which then wait for it; the batch waits for the deliveries it names.
        sent = [
            await partner.send(INGEST, REGISTERED, _enterprise(ent), ent),
            await partner.send(INGEST, DELIVERED, _delivery(1, batch, ent, "400000000000000.00", True), batch),
            await partner.send(INGEST, DELIVERED, _delivery(2, batch, ent, "0.01", False), batch),
            await partner.send(
                INGEST, PRODUCED_V2, _produced(batch, ent, quantity=1) | {"delivery_ids": _named(batch, 1, 2)}, batch
            ),
        ]
        [produced] = await tap.wait_for(
            lambda r: of_type("th.fivecogs.inputs.batch.produced.v1")(r) and r.key == batch.encode()
        )
        outcomes = await tap.outcomes(sent)

    assert data(produced)["cost_thb"] == "400000000000000.01"  # above numeric(14, 2)'s 10^12
    assert outcomes == dict.fromkeys(sent, "accepted")


async def test_repeat_has_no_second_effect_and_conflict_is_rejected(run_service, stack_env, partner: Partner) -> None:
    ent = f"ent-{uuid.uuid4().hex[:6]}"
    async with (
        Tap(stack_env.kafka, events_topic("inputs"), FEEDBACK, f"{INGEST}.dlq") as tap,
        run_service(DEFINITION),
    ):
        event_id = await partner.send(INGEST, REGISTERED, _enterprise(ent), ent)
        await partner.send(INGEST, REGISTERED, _enterprise(ent), ent, event_id=event_id)  # a plain repeat
        await partner.send(INGEST, REGISTERED, _enterprise(ent, members=13), ent, event_id=event_id)  # a conflict
        [dead] = await tap.wait_for(lambda r: r.topic.endswith(".dlq") and r.key == ent.encode())
        await tap.wait_for(lambda r: r.topic == FEEDBACK and data(r).get("event_id") == event_id)
        registered = [r for r in tap.records if r.topic == events_topic("inputs") and r.key == ent.encode()]

    assert len(registered) == 1
    assert data(registered[0])["members"] == 12
    assert header(dead, "fivecogs_error_kind") == "conflict"


async def test_a_value_the_database_cannot_hold_is_dead_lettered_not_retried(
    run_service, stack_env, partner: Partner
) -> None:
    """Three billion members is valid JSON and a valid count, but not an int4: asyncpg refuses it on the client
    side with an InterfaceError, which must not count as "try again later" (that would hold the partition)."""
    ent = f"ent-{uuid.uuid4().hex[:6]}"
    async with (
        Tap(stack_env.kafka, events_topic("inputs"), FEEDBACK, f"{INGEST}.dlq") as tap,
        run_service(DEFINITION),
    ):
        too_big = await partner.send(INGEST, REGISTERED, _enterprise(ent, members=3_000_000_000), ent)
        await partner.send(INGEST, REGISTERED, _enterprise(ent), ent)  # same key, same partition, right after
        [dead] = await tap.wait_for(lambda r: r.topic.endswith(".dlq") and header(r, "ce_id") == too_big)
        [told] = await tap.wait_for(lambda r: r.topic == FEEDBACK and data(r).get("event_id") == too_big)
        [registered] = await tap.wait_for(lambda r: r.topic == events_topic("inputs") and r.key == ent.encode())

    assert header(dead, "fivecogs_error_kind") == "processing_error"
    assert "3000000000" in header(dead, "fivecogs_error_detail")  # for operators
    assert data(told)["detail"].startswith("a value is outside what fivecogs can store")  # no internals
    assert data(registered)["members"] == 12


@pytest.mark.parametrize(
    ("value", "headers_change", "kind"),
    [
        (b"{not json", {}, "malformed"),
        (b"{}", {"ce_type": b"th.fivecogs.enterprise.deleted.v1"}, "unknown_type"),
        (b'{"enterprise_id": "x"}', {}, "schema"),
        (b"{}", {"ce_specversion": b"0.3"}, "malformed"),
    ],
)
async def test_bad_records_go_to_the_dlq_byte_for_byte(
    run_service, stack_env, partner: Partner, value: bytes, headers_change: dict[str, bytes], kind: str
) -> None:
    from tests.support import ce_headers

    event_id = str(uuid.uuid4())
    headers = [(n, headers_change.get(n, v)) for n, v in ce_headers(REGISTERED, event_id=event_id)]
    async with Tap(stack_env.kafka, f"{INGEST}.dlq", FEEDBACK) as tap, run_service(DEFINITION):
        await partner.send_raw(INGEST, value, "x", headers)
        [dead] = await tap.wait_for(lambda r: r.topic.endswith(".dlq") and header(r, "ce_id") == event_id)
        [told] = await tap.wait_for(lambda r: r.topic == FEEDBACK and data(r).get("event_id") == event_id)

    assert dead.value == value
    assert dead.key == b"x"
    assert list(dead.headers)[: len(headers)] == headers
    assert header(dead, "fivecogs_error_kind") == kind
    assert header(dead, "fivecogs_original_topic") == INGEST
    assert data(told)["reason"] == kind
    assert data(told)["detail"]


async def test_batch_produced_v2_is_accepted_beside_v1(run_service, stack_env, partner: Partner) -> None:
    ent, batch = f"ent-{uuid.uuid4().hex[:6]}", f"batch-{uuid.uuid4().hex[:6]}"
    produced_v2 = {
        "batch_id": batch,
        "enterprise_id": ent,
        "product_id": f"prod-{ent}",
        "product_name": "Mangosteen juice",
        "quantity": 120,
        "unit": "bottle",
        "produced_on": "2026-07-01",
        "lot": "L-2026-07-A",
        "expires_on": "2027-01-01",
    }
    async with Tap(stack_env.kafka, events_topic("inputs")) as tap, run_service(DEFINITION):
        await partner.send(INGEST, REGISTERED, _enterprise(ent), ent)
        # Another key, another partition: the batch must not overtake its enterprise's registration.
        await tap.wait_for(lambda r: r.key == ent.encode() and header(r, "ce_type").endswith("registered.v1"))
        await partner.send(INGEST, "th.fivecogs.batch.produced.v2", produced_v2, batch)
        [produced] = await tap.wait_for(
            lambda r: of_type("th.fivecogs.inputs.batch.produced.v1")(r) and r.key == batch.encode()
        )
    assert data(produced)["lot"] == "L-2026-07-A"
    assert data(produced)["expires_on"] == "2027-01-01"
    assert data(produced)["cost_thb"] == "0.00"


async def test_deliveries_and_a_batch_sent_before_their_enterprise_wait_and_the_batch_costs_what_it_names(
    run_service, stack_env, partner: Partner
) -> None:
    ent, batch, other = f"ent-{uuid.uuid4().hex[:6]}", f"batch-{uuid.uuid4().hex[:6]}", f"batch-{uuid.uuid4().hex[:6]}"
    named = _produced(batch, ent) | {"delivery_ids": _named(batch, 1, 2)}
    async with (
        Tap(stack_env.kafka, events_topic("inputs"), FEEDBACK) as tap,
        run_service(DEFINITION),
    ):
        # The batch first, then one of its deliveries, then the enterprise, then its other delivery.
        sent = [
            await partner.send(INGEST, PRODUCED_V2, named, batch),
            await partner.send(INGEST, DELIVERED, _delivery(2, batch, ent, "300.25", False), batch),
            await partner.send(INGEST, DELIVERED, _delivery(1, other, ent, "5.00", True), other),
        ]
        first = await tap.first_answers(sent)
        sent.append(await partner.send(INGEST, REGISTERED, _enterprise(ent), ent))
        sent.append(await partner.send(INGEST, DELIVERED, _delivery(1, batch, ent, "1250.50", True), batch))
        # A batch that names no deliveries costs those received before it; one it has not received is refused.
        unnamed = await partner.send(INGEST, PRODUCED, _produced(other, ent), other)
        outcomes = await tap.outcomes([*sent, unnamed])
        produced = {
            r.key.decode(): data(r)
            for r in await tap.wait_for(
                lambda r: (
                    of_type("th.fivecogs.inputs.batch.produced.v1")(r) and r.key in (batch.encode(), other.encode())
                ),
                2,
            )
        }

    assert [header(r, "ce_type").split(".")[-2] for r in first] == ["held", "held", "held"]
    assert data(first[0])["reason"] == "rule:unknown_enterprise"
    assert outcomes == dict.fromkeys([*sent, unnamed], "accepted")
    assert (produced[batch]["cost_thb"], produced[batch]["delivery_ids"]) == ("1550.75", _named(batch, 1, 2))
    assert (produced[other]["cost_thb"], produced[other]["delivery_ids"]) == ("5.00", _named(other, 1))


async def test_a_batch_that_does_not_name_a_delivery_it_received_is_refused(
    run_service, stack_env, partner: Partner
) -> None:
    ent, batch = f"ent-{uuid.uuid4().hex[:6]}", f"batch-{uuid.uuid4().hex[:6]}"
    async with (
        Tap(stack_env.kafka, events_topic("inputs"), FEEDBACK) as tap,
        run_service(DEFINITION),
    ):
        sent = [
            await partner.send(INGEST, REGISTERED, _enterprise(ent), ent),
            await partner.send(INGEST, DELIVERED, _delivery(1, batch, ent, "10.00", True), batch),
            await partner.send(INGEST, DELIVERED, _delivery(2, batch, ent, "20.00", True), batch),
        ]
        await tap.outcomes(sent)
        wrong = await partner.send(
            INGEST, PRODUCED_V2, _produced(batch, ent) | {"delivery_ids": _named(batch, 1)}, batch
        )
        outcomes = await tap.outcomes([wrong])

    assert outcomes == {wrong: "rule:delivery_not_named"}
