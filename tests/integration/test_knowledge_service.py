"""The knowledge service on the real broker and database: it learns from inputs' events, records trainings,
accepts certifications by the rules, assesses every produced batch, and takes a redelivered event in once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from fivecogs_knowledge.app import DEFINITION
from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts import events_topic, internal_type
from fivecogs_shared.kafka_access import KafkaAccess
from tests.support import FEEDBACK, Partner, Tap, data, header, ingest

pytestmark = pytest.mark.integration

INGEST = ingest("knowledge")
INPUTS_EVENTS = events_topic("inputs")
EVENTS = events_topic("knowledge")
TRAINING = "th.fivecogs.training.completed.v1"
CERTIFICATION = "th.fivecogs.certification.granted.v1"
REGISTERED = internal_type("inputs", "enterprise.registered")
PRODUCED = internal_type("inputs", "batch.produced")
TRAINING_RECORDED = internal_type("knowledge", "training.recorded")
CERTIFICATION_ACCEPTED = internal_type("knowledge", "certification.accepted")
BATCH_ASSESSED = internal_type("knowledge", "batch.assessed")
PROVINCE = "Nakhon Si Thammarat"


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _registered(enterprise_id: str) -> dict[str, Any]:
    return {
        "enterprise_id": enterprise_id,
        "name": "Ban Khiriwong Herbal Group",
        "province": PROVINCE,
        "region": "south",
        "sector": "processing",
        "members": 25,
        "target_poor_households": 10,
    }


def _produced(batch_id: str, enterprise_id: str, product_id: str, produced_on: str) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "enterprise_id": enterprise_id,
        "province": PROVINCE,
        "sector": "processing",
        "product_id": product_id,
        "product_name": "Herbal balm 50 g",
        "quantity": 200,
        "unit": "jar",
        "produced_on": produced_on,
        "cost_thb": "1550.75",
        "non_local_cost_thb": "300.25",
        "delivery_ids": [f"{batch_id}-d1", f"{batch_id}-d2"],
    }


def _training(training_id: str, enterprise_id: str, completed_on: str) -> dict[str, Any]:
    return {
        "training_id": training_id,
        "enterprise_id": enterprise_id,
        "topic": "bookkeeping",
        "participants": 12,
        "completed_on": completed_on,
    }


def _certificate(certificate_id: str, enterprise_id: str, product_id: str, **changes: Any) -> dict[str, Any]:
    fields = {
        "certificate_id": certificate_id,
        "product_id": product_id,
        "enterprise_id": enterprise_id,
        "scheme": "otop_stars",
        "level": 4,
        "valid_from": "2025-01-01",
        "valid_until": "2025-12-31",
    }
    return fields | changes


def _emitted(ce_type: str, key: str):
    return lambda r: r.topic == EVENTS and header(r, "ce_type") == ce_type and r.key == key.encode()


async def _learn(inputs: Partner, enterprise_id: str, tap: Tap, batch_id: str, product_id: str, day: str) -> str:
    """Inputs registers the enterprise and produces a first batch. Once the batch is assessed, knowledge knows
    the product and its enterprise (from the batch itself if the registration, on another partition, lags).
    Returns the id of the batch.produced event."""
    await inputs.send(INPUTS_EVENTS, REGISTERED, _registered(enterprise_id), enterprise_id)
    produced = _produced(batch_id, enterprise_id, product_id, day)
    event_id = await inputs.send(INPUTS_EVENTS, PRODUCED, produced, batch_id)
    await tap.wait_for(lambda r: _emitted(BATCH_ASSESSED, product_id)(r) and data(r)["batch_id"] == batch_id)
    return event_id


async def _consumed_everything(kafka: KafkaAccess, group_id: str, topic: str, timeout: float = 30) -> None:
    """Wait until the service committed offsets up to the current end of the topic: all of it was applied."""
    ends = await kafka_admin.end_offsets(kafka, await kafka_admin.topic_partitions(kafka, topic))
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        committed = await kafka_admin.committed_offsets(kafka, group_id)
        if all(committed.get(tp, 0) >= end for tp, end in ends.items()):
            return
        assert asyncio.get_running_loop().time() < deadline, f"{group_id} did not reach the end of {topic}"
        await asyncio.sleep(0.2)


async def test_batches_are_assessed_with_certifications_and_trainings_of_their_day(
    run_service, stack_env, partner: Partner
) -> None:
    ent, product = _id("ent"), _id("prod")
    first, second = _id("batch"), _id("batch")
    async with (
        Tap(stack_env.kafka, EVENTS, FEEDBACK) as tap,
        Partner(stack_env.kafka, source="fivecogs/inputs") as inputs,
        run_service(DEFINITION),
    ):
        await _learn(inputs, ent, tap, first, product, "2025-03-01")
        await partner.send(INGEST, TRAINING, _training(_id("trn"), ent, "2025-02-20"), ent)
        await partner.send(INGEST, TRAINING, _training(_id("trn"), ent, "2025-07-01"), ent)
        await partner.send(INGEST, TRAINING, _training(_id("trn"), ent, "2025-08-01"), ent)
        otop, gap = _id("otop"), _id("gap")
        await partner.send(INGEST, CERTIFICATION, _certificate(otop, ent, product), product)
        await partner.send(
            INGEST,
            CERTIFICATION,
            _certificate(gap, ent, product, scheme="gap", level=None, valid_from="2025-08-01"),
            product,
        )
        trainings = await tap.wait_for(_emitted(TRAINING_RECORDED, ent), count=3)
        accepted = await tap.wait_for(_emitted(CERTIFICATION_ACCEPTED, product), count=2)
        await inputs.send(INPUTS_EVENTS, PRODUCED, _produced(second, ent, product, "2025-07-01"), second)
        [assessed] = await tap.wait_for(
            lambda r: _emitted(BATCH_ASSESSED, product)(r) and data(r)["batch_id"] == second
        )
        [before] = [r for r in tap.records if _emitted(BATCH_ASSESSED, product)(r) and data(r)["batch_id"] == first]

    assert {data(r)["province"] for r in trainings} == {PROVINCE}
    assert {data(r)["certificate_id"]: data(r)["province"] for r in accepted} == {otop: PROVINCE, gap: PROVINCE}
    # The first batch came before any training or certificate.
    assert data(before)["certifications"] == []
    assert data(before)["trainings_completed"] == 0
    # The second: the OTOP certificate is valid on 2025-07-01, the GAP one only from August; two trainings
    # were completed by that day (one on the day itself), the third a month later.
    body = data(assessed)
    assert body["certifications"] == [{"certificate_id": otop, "scheme": "otop_stars", "level": 4}]
    assert body["trainings_completed"] == 2
    facts = {k: v for k, v in body.items() if k not in ("certifications", "trainings_completed")}
    # The batch facts pass through unchanged (v1 batches carry no lot or expiry).
    assert facts == {**_produced(second, ent, product, "2025-07-01"), "lot": None, "expires_on": None}
    assert header(assessed, "ce_source") == "fivecogs/knowledge"


async def test_rules_refuse_trainings_and_certifications(run_service, stack_env, partner: Partner) -> None:
    ent, other, product, others_product = _id("ent"), _id("ent"), _id("prod"), _id("prod")
    certificate, never_made = _id("otop"), _id("prod")
    async with (
        Tap(stack_env.kafka, EVENTS, FEEDBACK) as tap,
        Partner(stack_env.kafka, source="fivecogs/inputs") as inputs,
        run_service(DEFINITION, hold_seconds=2, hold_check_seconds=0.2),  # what never comes: rejected soon
    ):
        await _learn(inputs, ent, tap, _id("batch"), product, "2025-03-01")
        await _learn(inputs, other, tap, _id("batch"), others_product, "2025-03-01")
        stranger = _id("ent")
        sent = {
            "training_of_stranger": await partner.send(
                INGEST, TRAINING, _training(_id("trn"), stranger, "2025-02-20"), stranger
            ),
            "certificate_of_stranger": await partner.send(
                INGEST, CERTIFICATION, _certificate(_id("otop"), stranger, product), product
            ),
            "never_produced": await partner.send(
                INGEST, CERTIFICATION, _certificate(_id("otop"), ent, never_made), never_made
            ),
            "made_by_another": await partner.send(
                INGEST, CERTIFICATION, _certificate(_id("otop"), ent, others_product), others_product
            ),
        }
        first = await partner.send(INGEST, CERTIFICATION, _certificate(certificate, ent, product), product)
        await tap.wait_for(_emitted(CERTIFICATION_ACCEPTED, product))
        # The same certificate id again, for a product its (other) enterprise does make: the id is taken.
        sent["again"] = await partner.send(
            INGEST, CERTIFICATION, _certificate(certificate, other, others_product), others_product
        )
        reasons = await tap.outcomes([*sent.values(), first])
        accepted = [r for r in tap.records if header(r, "ce_type") == CERTIFICATION_ACCEPTED]
        recorded = [r for r in tap.records if _emitted(TRAINING_RECORDED, stranger)(r)]

    assert reasons.pop(first) == "accepted"
    # What refers to what may still come waits first (held), and is rejected once, when its wait is over.
    answers = {name: [header(r, "ce_type").split(".")[-2] for r in tap.answers(sent[name])] for name in sent}
    assert answers == {name: ["held", "rejected"] for name in sent if name != "again"} | {"again": ["rejected"]}
    assert {name: reasons[event_id] for name, event_id in sent.items()} == {
        "training_of_stranger": "rule:unknown_enterprise",
        "certificate_of_stranger": "rule:unknown_enterprise",
        "never_produced": "rule:unknown_product",
        "made_by_another": "rule:unknown_product",
        "again": "rule:duplicate_certificate",
    }
    assert [data(r)["enterprise_id"] for r in accepted if data(r)["certificate_id"] == certificate] == [ent]
    assert recorded == []


async def test_a_redelivered_batch_is_assessed_once(run_service, stack_env) -> None:
    ent, product, batch = _id("ent"), _id("prod"), _id("batch")
    async with (
        Tap(stack_env.kafka, EVENTS) as tap,
        Partner(stack_env.kafka, source="fivecogs/inputs") as inputs,
        run_service(DEFINITION) as runtime,
    ):
        event_id = await _learn(inputs, ent, tap, batch, product, "2025-03-01")
        body = _produced(batch, ent, product, "2025-03-01")
        await inputs.send(INPUTS_EVENTS, PRODUCED, body, batch, event_id=event_id)  # at-least-once delivery
        await _consumed_everything(stack_env.kafka, runtime.settings.group_id, INPUTS_EVENTS)
        await asyncio.sleep(2)  # time for a wrongly emitted second assessment to be relayed and read
        assessed = [r for r in tap.records if _emitted(BATCH_ASSESSED, product)(r)]

    assert len(assessed) == 1
    assert data(assessed[0])["batch_id"] == batch


async def test_a_re_emitted_event_with_other_content_keeps_the_first_and_is_not_dead_lettered(
    run_service, stack_env
) -> None:
    """Upstream ids derive from the cause, so the same id can come back with other content (a replay after a
    code change): that is a repeat, not a partner's conflict."""
    ent, product, batch = _id("ent"), _id("prod"), _id("batch")
    async with (
        Tap(stack_env.kafka, EVENTS, f"{INPUTS_EVENTS}.dlq") as tap,
        Partner(stack_env.kafka, source="fivecogs/inputs") as inputs,
        run_service(DEFINITION) as runtime,
    ):
        event_id = await _learn(inputs, ent, tap, batch, product, "2025-03-01")
        body = _produced(batch, ent, product, "2025-03-01")
        changed = {**body, "cost_thb": "999.00"}
        await inputs.send(INPUTS_EVENTS, PRODUCED, changed, batch, event_id=event_id)
        await _consumed_everything(stack_env.kafka, runtime.settings.group_id, INPUTS_EVENTS)
        await asyncio.sleep(2)
        assessed = [r for r in tap.records if _emitted(BATCH_ASSESSED, product)(r)]
        dead = [r for r in tap.records if r.topic.endswith(".dlq") and header(r, "ce_id") == event_id]

    assert [data(r)["cost_thb"] for r in assessed] == [body["cost_thb"]]
    assert dead == []


async def test_a_training_and_a_certification_sent_before_their_enterprise_and_batch_wait_for_them(
    run_service, stack_env, partner: Partner
) -> None:
    ent, product, batch = _id("ent"), _id("prod"), _id("batch")
    async with (
        Tap(stack_env.kafka, EVENTS, FEEDBACK) as tap,
        Partner(stack_env.kafka, source="fivecogs/inputs") as inputs,
        run_service(DEFINITION),
    ):
        sent = [
            await partner.send(INGEST, TRAINING, _training(_id("trn"), ent, "2025-02-20"), ent),
            await partner.send(INGEST, CERTIFICATION, _certificate(_id("otop"), ent, product), product),
        ]
        held = await tap.first_answers(sent)
        await inputs.send(INPUTS_EVENTS, REGISTERED, _registered(ent), ent)
        await tap.wait_for(_emitted(TRAINING_RECORDED, ent))  # the training needed only the enterprise
        await inputs.send(INPUTS_EVENTS, PRODUCED, _produced(batch, ent, product, "2025-03-01"), batch)
        outcomes = await tap.outcomes(sent)
        [accepted] = await tap.wait_for(_emitted(CERTIFICATION_ACCEPTED, product))

    assert [(data(r)["reason"], data(r)["awaits"]) for r in held] == [
        ("rule:unknown_enterprise", f"enterprise:{ent}"),
        ("rule:unknown_enterprise", f"enterprise:{ent}"),
    ]
    assert outcomes == dict.fromkeys(sent, "accepted")
    assert data(accepted)["enterprise_id"] == ent
    assert [header(r, "ce_type").split(".")[-2] for r in tap.answers(sent[1])] == ["held", "accepted"]
