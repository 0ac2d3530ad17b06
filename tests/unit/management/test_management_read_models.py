"""Report totals and JSON, and the journey steps written for events (pure parts of the read models)."""

from datetime import UTC, date, datetime
from decimal import Decimal

from fivecogs_management import handlers, journey, reports, store
from fivecogs_management.api import _json, _step
from fivecogs_shared.contracts import internal
from fivecogs_shared.envelope import Envelope
from fivecogs_shared.uow import UnitOfWork

AT = journey.At("ev-1", datetime(2026, 7, 1, 9, 30, tzinfo=UTC))


def _row(province: str, revenue: str, cost: str, notices: int) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(reports.MONEY_FIELDS, Decimal("0"))
    row |= dict.fromkeys(reports.COUNT_FIELDS, 1)
    row |= {"province": province, "revenue_thb": Decimal(revenue), "cost_thb": Decimal(cost), "notices": notices}
    row["margin_thb"] = Decimal(revenue) - Decimal(cost)
    return row


def test_totals_sum_every_field_of_the_rows_and_money_prints_with_two_decimals() -> None:
    rows = [_row("Nan", "100.5", "135.70", 2), _row("Satun", "20.00", "0", 3)]

    totals = _json(reports.totals(rows))

    assert totals["revenue_thb"] == "120.50"
    assert totals["cost_thb"] == "135.70"
    assert totals["margin_thb"] == "-15.20"  # a loss stays visible
    assert totals["reinvest_thb"] == "0.00"
    assert totals["notices"] == 5
    assert totals["enterprises"] == 2
    assert "province" not in totals


def test_totals_of_an_empty_report_are_zero() -> None:
    totals = _json(reports.totals([]))

    assert totals["local_value_thb"] == "0.00"
    assert totals["target_poor_households_reached"] == 0


def test_a_delivery_belongs_to_its_batch_until_the_batch_names_the_product() -> None:
    delivery = internal.InputDelivered(
        delivery_id="d-1",
        batch_id="b-1",
        enterprise_id="e-1",
        province="Nan",
        item="indigo",
        quantity=Decimal("2.5"),
        unit="kg",
        cost_thb=Decimal("300.25"),
        local_source=False,
    )

    step = journey.delivered(AT, delivery)

    assert (step.step, step.batch_id, step.product_id, step.province) == ("delivered", "b-1", None, "Nan")
    assert step.what == "2.5 kg of indigo delivered to batch b-1 for 300.25 THB"
    assert "outside the locality" in step.why


def test_a_cancellation_is_an_ordering_step_of_each_product_of_the_order() -> None:
    cancel = internal.OrderCancelled(order_id="o-1", reason="buyer changed mind")

    steps = journey.cancelled(AT, cancel, [("p-1", "e-1"), ("p-2", "e-2")])

    assert [(s.step, s.product_id, s.enterprise_id) for s in steps] == [
        ("ordered", "p-1", "e-1"),
        ("ordered", "p-2", "e-2"),
    ]
    assert steps[0].what == "Order o-1 cancelled: buyer changed mind"
    assert steps[0].province is None  # read from the enterprise when the journey is asked for


def test_a_certification_is_told_as_part_of_the_assessment() -> None:
    certificate = internal.CertificationAccepted(
        certificate_id="c-1",
        product_id="p-1",
        enterprise_id="e-1",
        province="Nan",
        scheme="otop_stars",
        level=4,
        valid_from=date(2026, 1, 1),
        valid_until=date(2027, 1, 1),
    )

    step = journey.certified(AT, certificate)

    assert step.step in journey.STEPS
    assert step.step == "assessed"
    assert step.what == "Certificate c-1 (otop_stars level 4) accepted, valid 2026-01-01 to 2027-01-01"


def test_a_settlement_without_margin_says_nothing_is_distributed() -> None:
    settlement = internal.SettlementRecorded(
        settlement_id="o-1:e-1",
        order_id="o-1",
        payment_id="pay-1",
        enterprise_id="e-1",
        province="Nan",
        revenue_thb=Decimal("100.00"),
        cost_thb=Decimal("120.00"),
        non_local_cost_thb=Decimal("0.00"),
        product_ids=["p-1", "p-2"],
        settled_at=AT.when,
    )

    steps = journey.settled(AT, settlement, Decimal("-20.00"))

    assert [s.product_id for s in steps] == ["p-1", "p-2"]
    assert steps[0].why == "a margin of -20.00 THB so nothing to distribute"


# --- which partner event caused each step ------------------------------------------------------------------


def _settlement_event(correlation_id: str) -> Envelope:
    settlement = internal.SettlementRecorded(
        settlement_id="o-1:e-1",
        order_id="o-1",
        payment_id="pay-1",
        enterprise_id="e-1",
        province="Nan",
        revenue_thb=Decimal("360.00"),
        cost_thb=Decimal("13.13"),
        non_local_cost_thb=Decimal("0.00"),
        product_ids=["p-1"],
        settled_at=AT.when,
    )
    return Envelope(
        id="internal-settlement-1",
        source="fivecogs/marketing",
        type="th.fivecogs.marketing.settlement.recorded.v1",
        time=AT.when,
        key="e-1",
        data=settlement,
        digest=b"",
        correlation_id=correlation_id,
    )


def test_a_step_names_the_partner_event_that_caused_it() -> None:
    """An internal event's ce_correlationid is the ce_id of the partner event that started its chain."""
    event = _settlement_event("partner-payment-ce-id")

    at = handlers._at(event)
    [step] = journey.settled(at, event.data_as(internal.SettlementRecorded), Decimal("346.87"))

    assert (at.event_id, at.partner_event_id) == ("internal-settlement-1", "partner-payment-ce-id")
    assert step.at.partner_event_id == "partner-payment-ce-id"
    assert store._step_row(step)[-1] == "partner-payment-ce-id"  # the journey_steps.partner_event_id column


def test_a_distribution_step_names_the_partner_event_of_the_settlement_it_distributes() -> None:
    uow = UnitOfWork(conn=None, cog="management").caused_by(_settlement_event("partner-payment-ce-id"))  # type: ignore[arg-type]
    made = internal.DistributionMade(
        distribution_id="o-1:e-1",
        settlement_id="o-1:e-1",
        enterprise_id="e-1",
        province="Nan",
        margin_thb=Decimal("346.87"),
        members_thb=Decimal("208.12"),
        community_fund_thb=Decimal("104.06"),
        reinvest_thb=Decimal("34.69"),
        members_share=Decimal("0.60"),
        community_fund_share=Decimal("0.30"),
        reinvest_share=Decimal("0.10"),
        product_ids=["p-1"],
    )
    event_id = uow.emit(handlers.DISTRIBUTION_MADE, made, key="e-1")

    at = handlers._emitted(uow, event_id)

    assert (at.event_id, at.when, at.partner_event_id) == (event_id, AT.when, "partner-payment-ce-id")


def test_the_journey_shows_each_steps_partner_event_and_null_for_steps_recorded_before() -> None:
    row = {
        "step": "listed",
        "what": "Listed on retail at 120.00 THB per unit",
        "occurred_at": AT.when,
        "province": "Nan",
        "why": "an accepted listing lets buyers order the product on that channel",
        "event_id": "internal-listing-1",
        "partner_event_id": "partner-listing-ce-id",
    }

    assert _step(row)["partner_event_id"] == "partner-listing-ce-id"
    assert _step(row)["event_id"] == "internal-listing-1"
    assert _step(row | {"partner_event_id": None})["partner_event_id"] is None
