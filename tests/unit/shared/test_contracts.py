import json
import re
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from fivecogs_shared.contracts import (
    COGS,
    DEFAULT_DISTRIBUTION_POLICY,
    FEEDBACK_EVENT_TYPES,
    INTERNAL_EVENT_TYPES,
    PARTNER_EVENT_TYPES,
    dlq_topic,
    events_topic,
    feedback,
    feedback_topic,
    ingest_topic,
    internal,
    internal_type,
    partner,
    partner_of_topic,
)
from fivecogs_shared.contracts.topics import source_belongs_to, subscription_pattern

PARTNER_EXAMPLES: dict[str, dict[str, Any]] = {
    "th.fivecogs.enterprise.registered.v1": {
        "enterprise_id": "ent-nst-001",
        "name": "Ban Khiri Wong Herbal Group",
        "province": "Nakhon Si Thammarat",
        "sector": "processing",
        "members": 25,
        "target_poor_households": 10,
    },
    "th.fivecogs.input.delivered.v1": {
        "delivery_id": "del-001",
        "batch_id": "batch-001",
        "enterprise_id": "ent-nst-001",
        "item": "turmeric root",
        "quantity": "12.5",
        "unit": "kg",
        "cost_thb": "875.00",
        "local_source": True,
    },
    "th.fivecogs.batch.produced.v1": {
        "batch_id": "batch-001",
        "enterprise_id": "ent-nst-001",
        "product_id": "prod-balm-50g",
        "product_name": "Herbal balm 50 g",
        "quantity": 200,
        "unit": "jar",
        "produced_on": "2025-03-01",
    },
    "th.fivecogs.batch.produced.v2": {
        "batch_id": "batch-002",
        "enterprise_id": "ent-nst-001",
        "product_id": "prod-balm-50g",
        "product_name": "Herbal balm 50 g",
        "quantity": 150,
        "unit": "jar",
        "produced_on": "2025-04-01",
        "lot": "NST-2504-A",
        "expires_on": "2027-04-01",
    },
    "th.fivecogs.training.completed.v1": {
        "training_id": "trn-001",
        "enterprise_id": "ent-nst-001",
        "topic": "bookkeeping",
        "participants": 12,
        "completed_on": "2025-02-20",
    },
    "th.fivecogs.certification.granted.v1": {
        "certificate_id": "otop-2025-001",
        "product_id": "prod-balm-50g",
        "enterprise_id": "ent-nst-001",
        "scheme": "otop_stars",
        "level": 4,
        "valid_from": "2025-01-01",
        "valid_until": "2026-12-31",
    },
    "th.fivecogs.listing.requested.v1": {
        "listing_id": "lst-001",
        "product_id": "prod-balm-50g",
        "enterprise_id": "ent-nst-001",
        "channel": "retail",
        "unit_price_thb": "120.00",
    },
    "th.fivecogs.order.placed.v1": {
        "order_id": "ord-001",
        "buyer_id": "buyer-bkk-7",
        "channel": "retail",
        "lines": [{"product_id": "prod-balm-50g", "quantity": 3, "unit_price_thb": "120.00"}],
        "placed_at": "2025-03-05T10:15:00+07:00",
    },
    "th.fivecogs.order.cancelled.v1": {"order_id": "ord-001", "reason": "buyer changed their mind"},
    "th.fivecogs.payment.received.v1": {
        "payment_id": "pay-001",
        "order_id": "ord-001",
        "amount_thb": "360.00",
    },
    "th.fivecogs.subscription.created.v1": {
        "subscriber_id": "sub-provincial-office-nst",
        "network": "state",
        "provinces": ["Nakhon Si Thammarat"],
        "topics": ["sale", "distribution"],
        "webhook_url": "https://example.org/fivecogs/hook",
    },
    "th.fivecogs.distribution.policy.set.v1": {
        "province": "Phitsanulok",
        "members_share": "0.50",
        "community_fund_share": "0.40",
        "reinvest_share": "0.10",
    },
}


def as_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def changed(ce_type: str, **fields: Any) -> bytes:
    return as_json({**PARTNER_EXAMPLES[ce_type], **fields})


def model_of(ce_type: str) -> type[BaseModel]:
    return PARTNER_EVENT_TYPES[ce_type].model


# --- topics and registries ------------------------------------------------------------------------------


def test_topic_names() -> None:
    assert COGS == ("inputs", "knowledge", "marketing", "communication", "management")
    assert ingest_topic("marketing", "otop-hub") == "fivecogs.marketing.ingest.otop-hub"
    assert dlq_topic(ingest_topic("marketing", "otop-hub")) == "fivecogs.marketing.ingest.otop-hub.dlq"
    assert events_topic("inputs") == "fivecogs.inputs.events"
    assert feedback_topic("otop-hub") == "fivecogs.feedback.otop-hub"
    assert partner_of_topic("fivecogs.marketing.ingest.otop-hub") == "otop-hub"
    assert partner_of_topic("fivecogs.marketing.ingest.otop-hub.dlq") is None
    assert partner_of_topic("fivecogs.marketing.events") is None


def test_an_unknown_cog_has_no_topic() -> None:
    with pytest.raises(ValueError, match="unknown cog"):
        ingest_topic("market", "otop-hub")


@pytest.mark.parametrize("partner", ["", "Otop", "otop.hub", "otop_hub", "-otop", "a" * 64, "otop/hub", "otop hub"])
def test_a_partner_id_cannot_reach_into_another_partners_names(partner: str) -> None:
    with pytest.raises(ValueError, match="partner id"):
        ingest_topic("marketing", partner)
    with pytest.raises(ValueError, match="partner id"):
        feedback_topic(partner)


@pytest.mark.parametrize(
    ("source", "partner", "belongs"),
    [
        ("partner/otop-hub", "otop-hub", True),
        ("partner/otop-hub/bangkok-desk", "otop-hub", True),
        ("partner/otop-hubx", "otop-hub", False),  # a longer id is another partner
        ("partner/otop", "otop-hub", False),
        ("partner/otop-hub-evil", "otop-hub", False),
        ("fivecogs/marketing", "otop-hub", False),  # a cog's name: never a partner's to claim
        ("otop-hub", "otop-hub", False),
        ("partner//otop-hub", "otop-hub", False),
        ("PARTNER/otop-hub", "otop-hub", False),
        ("", "otop-hub", False),
    ],
)
def test_an_event_belongs_to_a_partner_only_by_its_own_source(source: str, partner: str, belongs: bool) -> None:
    assert source_belongs_to(source, partner) is belongs


def test_a_service_subscribes_to_its_partners_topics_and_its_upstream_only() -> None:
    pattern = re.compile(subscription_pattern("marketing"))
    assert pattern.match("fivecogs.marketing.ingest.otop-hub")
    assert pattern.match("fivecogs.inputs.events")
    assert not pattern.match("fivecogs.marketing.ingest.otop-hub.dlq")
    assert not pattern.match("fivecogs.inputs.ingest.otop-hub")
    assert not pattern.match("fivecogs.marketing.events")
    assert not pattern.match("fivecogs.inputs.events.dlq")
    assert not pattern.match("fivecogs.feedback.otop-hub")


def test_every_partner_type_has_an_example() -> None:
    assert set(PARTNER_EXAMPLES) == set(PARTNER_EVENT_TYPES)
    assert {event_type.cog for event_type in PARTNER_EVENT_TYPES.values()} == set(COGS)


@pytest.mark.parametrize("ce_type", sorted(PARTNER_EXAMPLES))
def test_each_partner_example_validates_from_json_bytes(ce_type: str) -> None:
    event_type = PARTNER_EVENT_TYPES[ce_type]
    event = event_type.model.model_validate_json(as_json(PARTNER_EXAMPLES[ce_type]))
    assert event_type.key_field in type(event).model_fields
    assert getattr(event, event_type.key_field) == PARTNER_EXAMPLES[ce_type][event_type.key_field]


@pytest.mark.parametrize("ce_type", sorted(PARTNER_EXAMPLES))
def test_each_partner_example_survives_a_json_round_trip(ce_type: str) -> None:
    model = model_of(ce_type)
    event = model.model_validate_json(as_json(PARTNER_EXAMPLES[ce_type]))
    assert model.model_validate_json(event.model_dump_json()) == event


def test_internal_types_are_named_after_their_cog_and_key_on_a_field() -> None:
    for ce_type, event_type in INTERNAL_EVENT_TYPES.items():
        assert ce_type == internal_type(event_type.cog, ce_type.split(".", 3)[3].removesuffix(".v1"))
        assert ce_type.startswith(f"th.fivecogs.{event_type.cog}.")
        assert event_type.key_field in event_type.model.model_fields
    assert internal_type("marketing", "order.accepted") == "th.fivecogs.marketing.order.accepted.v1"


def test_feedback_types() -> None:
    assert set(FEEDBACK_EVENT_TYPES) == {
        "th.fivecogs.partner.event.accepted.v1",
        "th.fivecogs.partner.event.held.v1",
        "th.fivecogs.partner.event.rejected.v1",
        "th.fivecogs.order.accepted.v1",
        "th.fivecogs.order.rejected.v1",
    }


@pytest.mark.parametrize(
    "event_type",
    [*PARTNER_EVENT_TYPES.values(), *INTERNAL_EVENT_TYPES.values(), *FEEDBACK_EVENT_TYPES.values()],
)
def test_every_contract_has_a_json_schema_and_forbids_unknown_fields(event_type: Any) -> None:
    assert event_type.model.model_json_schema()["additionalProperties"] is False


def test_the_default_distribution_policy_is_60_30_10() -> None:
    policy = DEFAULT_DISTRIBUTION_POLICY
    assert (policy.members_share, policy.community_fund_share, policy.reinvest_share) == (
        Decimal("0.60"),
        Decimal("0.30"),
        Decimal("0.10"),
    )


# --- partner violations ---------------------------------------------------------------------------------

ENTERPRISE = "th.fivecogs.enterprise.registered.v1"
DELIVERY = "th.fivecogs.input.delivered.v1"
CERTIFICATION = "th.fivecogs.certification.granted.v1"
LISTING = "th.fivecogs.listing.requested.v1"
ORDER = "th.fivecogs.order.placed.v1"
PAYMENT = "th.fivecogs.payment.received.v1"
SUBSCRIPTION = "th.fivecogs.subscription.created.v1"
POLICY = "th.fivecogs.distribution.policy.set.v1"
LINE = {"product_id": "prod-balm-50g", "quantity": 1, "unit_price_thb": "120.00"}


@pytest.mark.parametrize(
    ("ce_type", "body", "message"),
    [
        (CERTIFICATION, changed(CERTIFICATION, level=None), "required for otop_stars"),
        (CERTIFICATION, changed(CERTIFICATION, scheme="tcps", level=3), "must be null for tcps"),
        (CERTIFICATION, changed(CERTIFICATION, level=6), "less than or equal to 5"),
        (CERTIFICATION, changed(CERTIFICATION, valid_until="2024-12-31"), "before valid_from"),
        (ENTERPRISE, changed(ENTERPRISE, target_poor_households=26), "cannot exceed members"),
        (ENTERPRISE, changed(ENTERPRISE, members=0), "greater than or equal to 1"),
        (ENTERPRISE, changed(ENTERPRISE, members="25"), "valid integer"),
        (ENTERPRISE, changed(ENTERPRISE, province="Nakhon Si Thamarat"), "did you mean"),
        (ENTERPRISE, changed(ENTERPRISE, sector="fishing"), "sector"),
        (ENTERPRISE, changed(ENTERPRISE, enterprise_id=""), "at least 1 character"),
        (ENTERPRISE, changed(ENTERPRISE, enterprise_id="e" * 101), "at most 100 characters"),
        (ENTERPRISE, changed(ENTERPRISE, registered_by="me"), "Extra inputs are not permitted"),
        (DELIVERY, changed(DELIVERY, quantity="0"), "greater than 0"),
        (DELIVERY, changed(DELIVERY, cost_thb=875.0), "never a float"),
        (DELIVERY, changed(DELIVERY, local_source="yes"), "valid boolean"),
        (POLICY, changed(POLICY, reinvest_share="0.09"), "sum to exactly 1"),
        (POLICY, changed(POLICY, members_share=0.5), "never a float"),
        (ORDER, changed(ORDER, lines=[LINE, {**LINE, "quantity": 2}]), "only once"),
        (ORDER, changed(ORDER, lines=[]), "at least 1 item"),
        (ORDER, changed(ORDER, lines=[{**LINE, "product_id": f"p{i}"} for i in range(101)]), "at most 100"),
        (ORDER, changed(ORDER, lines=[{**LINE, "unit_price_thb": 120.0}]), "never a float"),
        (ORDER, changed(ORDER, lines=[{**LINE, "unit_price_thb": "0"}]), "greater than 0"),
        (ORDER, changed(ORDER, placed_at="2025-03-05T10:15:00"), "timezone"),
        (LISTING, changed(LISTING, channel="market"), "channel"),
        (LISTING, changed(LISTING, unit_price_thb="120.005"), "at most 2 decimal places"),
        (PAYMENT, changed(PAYMENT, amount_thb="0.00"), "greater than 0"),
        (SUBSCRIPTION, changed(SUBSCRIPTION, topics=[]), "at least 1 item"),
        (SUBSCRIPTION, changed(SUBSCRIPTION, topics=["sale", "sale"]), "only once"),
        (SUBSCRIPTION, changed(SUBSCRIPTION, topics=["weather"]), "topics"),
        (SUBSCRIPTION, changed(SUBSCRIPTION, webhook_url="ftp://example.org"), "http"),
    ],
)
def test_partner_violations_are_rejected(ce_type: str, body: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        model_of(ce_type).model_validate_json(body)


def test_a_non_otop_certificate_needs_no_level() -> None:
    body = {**PARTNER_EXAMPLES[CERTIFICATION], "scheme": "gap"}
    del body["level"]
    assert partner.CertificationGranted.model_validate_json(as_json(body)).level is None


def test_a_subscription_may_leave_out_provinces_and_webhook() -> None:
    body = {"subscriber_id": "sub-1", "network": "people", "topics": ["listing"]}
    subscription = partner.SubscriptionCreated.model_validate_json(as_json(body))
    assert subscription.provinces == []
    assert subscription.webhook_url is None


def test_a_received_event_cannot_be_altered() -> None:
    payment = partner.PaymentReceived.model_validate_json(as_json(PARTNER_EXAMPLES[PAYMENT]))
    with pytest.raises(ValidationError, match="frozen"):
        payment.amount_thb = Decimal("1.00")  # type: ignore[misc]


def test_money_is_dumped_as_a_json_string() -> None:
    order = partner.OrderPlaced.model_validate_json(changed(ORDER, lines=[{**LINE, "unit_price_thb": "120"}]))
    assert json.loads(order.model_dump_json())["lines"][0]["unit_price_thb"] == "120.00"
    policy = partner.DistributionPolicySet.model_validate_json(as_json(PARTNER_EXAMPLES[POLICY]))
    assert json.loads(policy.model_dump_json())["members_share"] == "0.50"


# --- internal invariants --------------------------------------------------------------------------------


def accepted_order(**fields: Any) -> dict[str, Any]:
    portion = {"batch_id": "batch-001", "quantity": 3, "cost_thb": "150.00", "non_local_cost_thb": "30.00"}
    line = {
        "product_id": "prod-balm-50g",
        "enterprise_id": "ent-nst-001",
        "quantity": 3,
        "unit_price_thb": "120.00",
        "portions": [portion],
    }
    order = {
        "order_id": "ord-001",
        "buyer_id": "buyer-bkk-7",
        "channel": "retail",
        "placed_at": "2025-03-05T10:15:00+07:00",
        "total_thb": "360.00",
        "lines": [line],
    }
    return {**order, **fields}


def distribution(**fields: Any) -> dict[str, Any]:
    made = {
        "distribution_id": "dist-ord-001:ent-nst-001",
        "settlement_id": "ord-001:ent-nst-001",
        "enterprise_id": "ent-nst-001",
        "province": "Nakhon Si Thammarat",
        "margin_thb": "210.01",
        "members_thb": "126.01",
        "community_fund_thb": "63.00",
        "reinvest_thb": "21.00",
        "members_share": "0.60",
        "community_fund_share": "0.30",
        "reinvest_share": "0.10",
        "product_ids": ["prod-balm-50g"],
    }
    return {**made, **fields}


def test_an_accepted_order_validates_and_dumps_money_as_strings() -> None:
    order = internal.OrderAccepted.model_validate_json(as_json(accepted_order()))
    assert json.loads(order.model_dump_json())["lines"][0]["portions"][0]["cost_thb"] == "150.00"


def test_an_accepted_order_total_must_be_the_sum_of_its_lines() -> None:
    with pytest.raises(ValidationError, match="not the sum of the lines"):
        internal.OrderAccepted.model_validate_json(as_json(accepted_order(total_thb="359.99")))


def test_portions_must_cover_their_line() -> None:
    order = accepted_order()
    order["lines"][0]["portions"][0]["quantity"] = 2
    with pytest.raises(ValidationError, match="portions hold 2 units"):
        internal.OrderAccepted.model_validate_json(as_json(order))


def test_a_distribution_pays_out_the_whole_positive_margin() -> None:
    assert internal.DistributionMade.model_validate_json(as_json(distribution())).members_thb == Decimal("126.01")
    with pytest.raises(ValidationError, match="not the margin"):
        internal.DistributionMade.model_validate_json(as_json(distribution(members_thb="126.00")))


def test_a_loss_distributes_nothing() -> None:
    zero = {"members_thb": "0", "community_fund_thb": "0", "reinvest_thb": "0"}
    loss = internal.DistributionMade.model_validate_json(as_json(distribution(margin_thb="-12.50", **zero)))
    assert json.loads(loss.model_dump_json())["margin_thb"] == "-12.50"


def test_a_settlement_id_is_derived_from_order_and_enterprise() -> None:
    settlement = {
        "settlement_id": "ord-001:ent-nst-001",
        "order_id": "ord-001",
        "payment_id": "pay-001",
        "enterprise_id": "ent-nst-001",
        "province": "Nakhon Si Thammarat",
        "revenue_thb": "360.00",
        "cost_thb": "150.00",
        "non_local_cost_thb": "30.00",
        "product_ids": ["prod-balm-50g"],
        "settled_at": "2025-03-05T11:00:00+07:00",
    }
    assert internal.SettlementRecorded.model_validate_json(as_json(settlement)).revenue_thb == Decimal("360")
    with pytest.raises(ValidationError, match="settlement_id must be"):
        internal.SettlementRecorded.model_validate_json(as_json({**settlement, "settlement_id": "s-1"}))


def test_an_enterprise_region_must_match_its_province() -> None:
    body = {**PARTNER_EXAMPLES[ENTERPRISE], "region": "south"}
    assert internal.EnterpriseRegistered.model_validate_json(as_json(body)).region == "south"
    with pytest.raises(ValidationError, match="in the south region"):
        internal.EnterpriseRegistered.model_validate_json(as_json({**body, "region": "central"}))


def test_batch_assessed_carries_every_field_of_batch_produced() -> None:
    produced = set(internal.BatchProduced.model_fields)
    assessed = set(internal.BatchAssessed.model_fields)
    assert produced < assessed
    assert assessed - produced == {"certifications", "trainings_completed"}


# --- feedback -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["malformed", "schema", "conflict", "processing_error", "rule:not_listed"])
def test_rejection_reasons_that_partners_can_branch_on(reason: str) -> None:
    rejected = feedback.PartnerEventRejected(event_id="e-1", event_type=ORDER, reason=reason, detail="")
    assert rejected.reason == reason


@pytest.mark.parametrize("reason", ["rule:", "rule:Not Listed", "bad", "schema "])
def test_other_rejection_reasons_are_refused(reason: str) -> None:
    with pytest.raises(ValidationError):
        feedback.PartnerEventRejected(event_id="e-1", event_type=ORDER, reason=reason, detail="")


def test_a_rejection_can_answer_a_record_without_id_or_type() -> None:
    rejected = feedback.PartnerEventRejected(event_id="", event_type="", reason="malformed", detail="no headers")
    assert rejected.event_id == ""


def test_an_order_rejection_names_a_rule() -> None:
    with pytest.raises(ValidationError):
        feedback.PartnerOrderRejected(order_id="o", buyer_id="b", reason="schema", detail="")
    accepted = feedback.PartnerOrderAccepted(order_id="o", buyer_id="b", total_thb=Decimal("360"))
    assert json.loads(accepted.model_dump_json())["total_thb"] == "360.00"


# The partner guide's examples (docs/partners.md) are checked against these contracts, and their published
# schemas, in tests/unit/test_partner_guide.py and run against the stack in tests/integration/.


def test_batch_produced_v1_is_upcast_to_v2_in_one_place() -> None:
    from fivecogs_shared.envelope import read_event

    class Record:
        topic, partition, offset = "fivecogs.inputs.ingest", 0, 0
        key = b"b-1"
        value = (
            b'{"batch_id": "b-1", "enterprise_id": "e-1", "product_id": "p-1", "product_name": "Rice",'
            b' "quantity": 5, "unit": "kg", "produced_on": "2026-06-01"}'
        )
        headers = (
            ("ce_specversion", b"1.0"),
            ("ce_id", b"id-1"),
            ("ce_source", b"partner/a"),
            ("ce_type", b"th.fivecogs.batch.produced.v1"),
            ("ce_time", b"2026-06-01T08:00:00+07:00"),
        )

    envelope = read_event(Record(), partner.partner_types_of("inputs"), 256 * 1024)
    assert envelope.type == "th.fivecogs.batch.produced.v1"  # what the partner sent, for feedback and inbox
    assert envelope.handled_as == "th.fivecogs.batch.produced.v2"
    upcast = envelope.data_as(partner.BatchProducedV2)
    assert (upcast.lot, upcast.expires_on, upcast.quantity) == (None, None, 5)


def test_batch_produced_v2_rejects_expiry_before_production() -> None:
    with pytest.raises(ValidationError, match="expires_on"):
        partner.BatchProducedV2.model_validate(
            {
                "batch_id": "b",
                "enterprise_id": "e",
                "product_id": "p",
                "product_name": "Rice",
                "quantity": 5,
                "unit": "kg",
                "produced_on": "2026-06-01",
                "expires_on": "2026-05-01",
            }
        )
