"""The simulation's model of docs/rules.md on small hand-made stories: what it expects the chain to answer, and
what it expects the report to say."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from fivecogs_ops.simulate.model import HELD, Answer, ChainModel, DeadLetter, Outcome
from fivecogs_ops.simulate.records import EventWriter, Sent, with_headers, with_value

BANGKOK = timezone(timedelta(hours=7))
NOON = datetime(2025, 6, 10, 12, tzinfo=BANGKOK)
PARTNER_ID = "cdd-phetchaburi"
PARTNER = f"partner/{PARTNER_ID}"
SUBSCRIBED = "th.fivecogs.subscription.created.v1"


class Story:
    """Partner events for one small story, applied to a fresh model as they are written."""

    def __init__(self) -> None:
        self.writer = EventWriter("t")
        self.model = ChainModel()

    def send(self, ce_type: str, at: datetime = NOON, **data: Any) -> Outcome:
        """The outcome; for an event held, the rule it breaks while it waits (its outcome should the wait expire)."""
        outcome = self.model.apply(self.writer.event(f"th.fivecogs.{ce_type}.v1", data, source=PARTNER, time=at))
        return replace(outcome, kind=outcome.reason) if outcome.kind == HELD else outcome

    def register(self, enterprise: str, province: str = "Phetchaburi", sector: str = "processing", **more: Any) -> None:
        fields = {"name": "Ban Tha Yang palm sugar group", "members": 20, "target_poor_households": 5, **more}
        self.send("enterprise.registered", enterprise_id=enterprise, province=province, sector=sector, **fields)

    def batch(
        self, batch: str, enterprise: str, product: str, quantity: int, day: str, *costs: tuple[str, bool]
    ) -> None:
        for n, (cost, local) in enumerate(costs):
            self.send(
                "input.delivered",
                delivery_id=f"{batch}-{n}",
                batch_id=batch,
                enterprise_id=enterprise,
                item="toddy palm sap",
                quantity="12.5",
                unit="l",
                cost_thb=cost,
                local_source=local,
            )
        self.send(
            "batch.produced",
            batch_id=batch,
            enterprise_id=enterprise,
            product_id=product,
            product_name="Palm sugar 500 g",
            quantity=quantity,
            unit="pack",
            produced_on=day,
        )

    def certify(self, certificate: str, product: str, enterprise: str, scheme: str, **window: Any) -> Outcome:
        window = {"valid_from": "2025-01-01", "valid_until": "2026-12-31", **window}
        fields = {"certificate_id": certificate, "product_id": product, "enterprise_id": enterprise, "scheme": scheme}
        return self.send("certification.granted", NOON, **fields, **window)

    def list(self, product: str, enterprise: str, channel: str, price: str, at: datetime = NOON) -> Outcome:
        fields = {"listing_id": f"l-{product}-{channel}", "product_id": product, "enterprise_id": enterprise}
        return self.send("listing.requested", at, **fields, channel=channel, unit_price_thb=price)

    def order(self, order: str, channel: str, *lines: tuple[str, int, str]) -> Outcome:
        return self.send(
            "order.placed",
            order_id=order,
            buyer_id="bkk-hotel-group-01",
            channel=channel,
            lines=[{"product_id": p, "quantity": q, "unit_price_thb": price} for p, q, price in lines],
            placed_at=NOON.isoformat(),
        )

    def pay(self, order: str, amount: str, payment: str = "") -> Outcome:
        return self.send("payment.received", payment_id=payment or f"pay-{order}", order_id=order, amount_thb=amount)

    def province(self, name: str = "Phetchaburi") -> dict[str, Any]:
        return self.model.report().provinces[name].to_json()


@pytest.fixture
def story() -> Story:
    made = Story()
    made.register("ent-1")
    return made


def test_fifo_takes_the_oldest_batch_first_and_rounds_each_portion_half_up(story: Story) -> None:
    # Published newest first: FIFO follows produced_on, not arrival.
    story.batch("b-2", "ent-1", "sugar", 3, "2025-03-02", ("10.00", False))
    story.batch("b-1", "ent-1", "sugar", 4, "2025-03-01", ("100.10", True))
    story.list("sugar", "ent-1", "local_market", "40.00")

    story.order("o-1", "local_market", ("sugar", 1, "40.00"))  # 100.10 / 4 = 25.025 -> 25.03, not 25.02
    story.order("o-2", "local_market", ("sugar", 4, "40.00"))  # 3 of b-1 (75.075 -> 75.08) and 1 of b-2 (3.33)
    story.pay("o-1", "40.00")
    story.pay("o-2", "160.00")

    row = story.province()
    assert row["cost_thb"] == "103.44"  # 25.03 + 75.08 + 3.33: portions, not the batches' 110.10
    assert row["revenue_thb"] == "200.00"
    assert row["local_value_thb"] == "196.67"  # revenue - the non-local part: one of three units of b-2


def test_same_day_batches_go_by_batch_id(story: Story) -> None:
    story.batch("b-9", "ent-1", "sugar", 10, "2025-03-01", ("90.00", True))
    story.batch("b-3", "ent-1", "sugar", 10, "2025-03-01", ("10.00", True))
    story.list("sugar", "ent-1", "local_market", "20.00")
    story.order("o-1", "local_market", ("sugar", 10, "20.00"))
    story.pay("o-1", "200.00")
    assert story.province()["cost_thb"] == "10.00"  # all from b-3


def test_rounding_remainders_go_to_the_community_fund() -> None:
    story = Story()
    story.send(
        "distribution.policy.set",
        province="Nakhon Si Thammarat",
        members_share="0.3333",
        community_fund_share="0.3334",
        reinvest_share="0.3333",
    )
    story.register("ent-n", province="Nakhon Si Thammarat")
    story.batch("b-1", "ent-n", "balm", 10, "2025-03-01")  # no deliveries: cost 0.00
    story.list("balm", "ent-n", "local_market", "1.00")
    story.order("o-1", "local_market", ("balm", 10, "1.00"))
    story.pay("o-1", "10.00")

    row = story.province("Nakhon Si Thammarat")
    assert (row["members_income_thb"], row["reinvest_thb"], row["community_fund_thb"]) == ("3.33", "3.33", "3.34")


def test_two_roundings_up_never_make_the_fund_negative() -> None:
    story = Story()
    story.send(
        "distribution.policy.set",
        province="Nan",
        members_share="0.50",
        community_fund_share="0",
        reinvest_share="0.50",
    )
    story.register("ent-n", province="Nan")
    story.batch("b-1", "ent-n", "cloth", 1, "2025-03-01", ("9.99", True))
    story.list("cloth", "ent-n", "local_market", "10.00")
    story.order("o-1", "local_market", ("cloth", 1, "10.00"))
    story.pay("o-1", "10.00")  # margin 0.01: members 0.01 (0.005 up), reinvest capped at 0.00

    row = story.province("Nan")
    assert (row["members_income_thb"], row["reinvest_thb"], row["community_fund_thb"]) == ("0.01", "0.00", "0.00")


@pytest.mark.parametrize(("price", "margin"), [("20.00", "-50.00"), ("30.00", "0.00")])
def test_a_sale_at_or_below_cost_distributes_nothing_and_notifies_no_distribution(
    story: Story, price: str, margin: str
) -> None:
    story.send("subscription.created", subscriber_id="s", network="state", topics=["sale", "distribution"])
    story.batch("b-1", "ent-1", "sugar", 10, "2025-03-01", ("300.00", True))
    story.list("sugar", "ent-1", "local_market", price)
    story.order("o-1", "local_market", ("sugar", 5, price))
    story.pay("o-1", f"{Decimal(price) * 5:.2f}")  # the cost is 150.00

    row = story.province()
    assert row["margin_thb"] == margin
    assert row["members_income_thb"] == row["community_fund_thb"] == row["reinvest_thb"] == "0.00"
    assert row["active_enterprises"] == 1
    assert row["target_poor_households_reached"] == 5
    assert row["notices"] == 1  # the sale only


@pytest.mark.parametrize(
    ("scheme", "level", "channel", "allowed"),
    [
        ("otop_stars", 3, "retail", False),
        ("otop_stars", 4, "retail", True),
        ("tcps", None, "retail", True),
        ("gap", None, "retail", False),
        ("gap", None, "online", True),
        ("halal", None, "otop_trader", True),
        ("cbt_standard", None, "tourism", False),  # the enterprise is not in community tourism
    ],
)
def test_channels_ask_for_certificates(
    story: Story, scheme: str, level: int | None, channel: str, allowed: bool
) -> None:
    story.batch("b-1", "ent-1", "sugar", 10, "2025-03-01")
    story.certify("c-1", "sugar", "ent-1", scheme, **({"level": level} if level else {}))
    outcome = story.list("sugar", "ent-1", channel, "20.00")
    assert outcome.kind == ("accepted" if allowed else "rule:certification_required")


def test_an_expired_certificate_opens_no_channel(story: Story) -> None:
    story.batch("b-1", "ent-1", "sugar", 10, "2025-03-01")
    story.certify("c-1", "sugar", "ent-1", "tcps", valid_from="2024-01-01", valid_until="2025-06-09")
    for channel in ("online", "otop_trader", "retail"):
        assert story.list("sugar", "ent-1", channel, "20.00").kind == "rule:certification_required"
    story.certify("c-2", "sugar", "ent-1", "tcps", valid_from="2025-06-11", valid_until="2026-06-09")
    assert story.list("sugar", "ent-1", "online", "20.00").kind == "rule:certification_required"  # not yet


def test_tourism_needs_a_community_tourism_enterprise_with_cbt() -> None:
    story = Story()
    story.register("ent-t", sector="community_tourism")
    story.batch("b-1", "ent-t", "homestay", 10, "2025-03-01")
    assert story.list("homestay", "ent-t", "tourism", "800.00").kind == "rule:certification_required"
    story.certify("c-1", "homestay", "ent-t", "cbt_standard")
    assert story.list("homestay", "ent-t", "tourism", "800.00").kind == "accepted"
    assert story.list("homestay", "ent-t", "local_market", "700.00").kind == "accepted"  # no certificate needed


def test_validity_is_judged_on_the_utc_day_of_the_listing(story: Story) -> None:
    story.batch("b-1", "ent-1", "sugar", 10, "2025-03-01")
    story.certify("c-1", "sugar", "ent-1", "tcps", valid_from="2025-01-01", valid_until="2025-06-27")
    early_on_the_28th = datetime(2025, 6, 28, 5, 30, tzinfo=BANGKOK)  # still the 27th in UTC
    assert story.list("sugar", "ent-1", "retail", "20.00", at=early_on_the_28th).kind == "accepted"
    later_on_the_28th = datetime(2025, 6, 28, 7, 30, tzinfo=BANGKOK)
    assert story.list("sugar", "ent-1", "retail", "21.00", at=later_on_the_28th).kind == "rule:certification_required"
    assert story.list("sugar", "ent-1", "retail", "22.00", at=datetime(2025, 6, 27, 23, tzinfo=UTC)).kind == "accepted"


def test_notices_go_to_matching_subscribers_after_they_subscribe(story: Story) -> None:
    subscribe = story.send
    subscribe("subscription.created", subscriber_id="all", network="media", topics=["certification", "listing"])
    subscribe(
        "subscription.created", subscriber_id="here", network="state", provinces=["Phetchaburi"], topics=["listing"]
    )
    subscribe("subscription.created", subscriber_id="there", network="state", provinces=["Nan"], topics=["listing"])
    story.batch("b-1", "ent-1", "sugar", 10, "2025-03-01")
    story.certify("c-1", "sugar", "ent-1", "gap")  # "all": 1
    story.list("sugar", "ent-1", "local_market", "20.00")  # "all" and "here": 2
    subscribe("subscription.created", subscriber_id="all", network="media", topics=["sale"])  # replaces
    story.list("sugar", "ent-1", "online", "25.00")  # "here" only: 1
    assert story.province()["notices"] == 4


def test_a_subscription_belongs_to_its_partner_and_needs_a_public_webhook(story: Story) -> None:
    def subscribe(source: str, **data: Any) -> str:
        fields = {"subscriber_id": "office", "network": "state", "topics": ["listing"], **data}
        return story.model.apply(story.writer.event(SUBSCRIBED, fields, source=source, time=NOON)).kind

    assert subscribe(PARTNER) == "accepted"
    assert subscribe(f"{PARTNER}/desk-2", topics=["sale"]) == "accepted"  # another desk of the same partner
    assert subscribe("partner/someone-else", topics=["listing"]) == "rule:subscription_owned"
    assert subscribe(PARTNER, webhook_url="http://169.254.169.254/latest/") == "rule:webhook_destination"
    assert subscribe(PARTNER, webhook_url="http://[::ffff:10.0.0.1]/h") == "rule:webhook_destination"
    assert subscribe(PARTNER, webhook_url="https://user:pw@93.184.216.34/h") == "rule:webhook_destination"
    assert subscribe(PARTNER, webhook_url="https://93.184.216.34/h") == "accepted"
    assert subscribe("partner/someone-else", topics=["sale"]) == "rule:subscription_owned"
    story.batch("b-1", "ent-1", "sugar", 10, "2025-03-01")
    story.list("sugar", "ent-1", "local_market", "20.00")
    assert story.province()["notices"] == 1  # the owner's listing subscription stands


def test_an_order_is_refused_whole_and_its_id_stays_free(story: Story) -> None:
    story.batch("b-1", "ent-1", "sugar", 5, "2025-03-01", ("50.00", True))
    story.batch("b-2", "ent-1", "jam", 5, "2025-03-01", ("50.00", True))
    story.list("sugar", "ent-1", "local_market", "20.00")
    story.list("jam", "ent-1", "local_market", "30.00")

    refused = story.order("o-1", "local_market", ("sugar", 2, "20.00"), ("jam", 6, "30.00"))
    assert refused.kind == "rule:insufficient_stock"
    assert Answer(PARTNER_ID, "order.rejected", "o-1", "rule:insufficient_stock") in refused.answers
    assert story.pay("o-1", "160.00").kind == "rule:unknown_order"  # a refused order leaves nothing behind
    accepted = story.order("o-1", "local_market", ("sugar", 5, "20.00"), ("jam", 5, "30.00"))
    assert accepted.answers == (
        Answer(PARTNER_ID, "accepted", accepted.answers[0].subject, "th.fivecogs.order.placed.v1"),
        Answer(PARTNER_ID, "order.accepted", "o-1", "250.00"),
    )
    assert story.order("o-1", "local_market", ("sugar", 1, "20.00")).kind == "rule:duplicate_order"
    # The payment waited for an order o-1; the accepted one came, and it does not pay its total.
    assert story.model.finish()[-3].kind == "rule:amount_mismatch"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (("honey", 1, "20.00"), "rule:unknown_product"),
        (("sugar", 1, "19.50"), "rule:price_mismatch"),
        (("sugar", 11, "20.00"), "rule:insufficient_stock"),
    ],
)
def test_order_lines_are_checked_in_order(story: Story, line: tuple[str, int, str], reason: str) -> None:
    story.batch("b-1", "ent-1", "sugar", 10, "2025-03-01")
    story.list("sugar", "ent-1", "local_market", "20.00")
    assert story.order("o-1", "local_market", line).kind == reason
    assert story.order("o-2", "retail", ("sugar", 1, "20.00")).kind == "rule:not_listed"


def test_payments_and_cancellations_follow_the_order_state(story: Story) -> None:
    story.batch("b-1", "ent-1", "sugar", 10, "2025-03-01")
    story.list("sugar", "ent-1", "local_market", "20.00")
    story.order("o-1", "local_market", ("sugar", 10, "20.00"))
    assert story.order("o-2", "local_market", ("sugar", 1, "20.00")).kind == "rule:insufficient_stock"
    assert story.send("order.cancelled", order_id="o-1", reason="changed mind").kind == "accepted"
    assert story.send("order.cancelled", order_id="o-1", reason="again").kind == "rule:order_not_open"
    assert story.pay("o-1", "200.00").kind == "rule:order_not_open"
    assert story.order("o-2", "local_market", ("sugar", 10, "20.00")).kind == "accepted"  # the units came back
    assert story.pay("o-2", "199.99").kind == "rule:amount_mismatch"
    assert story.pay("o-2", "200.00").kind == "accepted"
    assert story.pay("o-2", "200.00", payment="again").kind == "rule:already_settled"
    assert story.send("order.cancelled", order_id="o-2", reason="late").kind == "rule:already_settled"
    assert story.send("order.cancelled", order_id="o-9", reason="?").kind == "rule:unknown_order"


def test_inputs_rules(story: Story) -> None:
    story.register("ent-2")
    story.batch("b-1", "ent-1", "sugar", 10, "2025-03-01", ("5.00", True))
    late = story.send(
        "input.delivered",
        delivery_id="late",
        batch_id="b-1",
        enterprise_id="ent-1",
        item="sap",
        quantity=1,
        unit="l",
        cost_thb="1.00",
        local_source=True,
    )
    assert late.kind == "rule:batch_closed"
    stolen = story.send(
        "batch.produced",
        batch_id="b-2",
        enterprise_id="ent-2",
        product_id="sugar",
        product_name="Palm sugar",
        quantity=1,
        unit="pack",
        produced_on="2025-03-03",
    )
    assert stolen.kind == "rule:product_enterprise_mismatch"
    moved = story.send(
        "enterprise.registered",
        enterprise_id="ent-1",
        name="x",
        province="Nan",
        sector="processing",
        members=3,
        target_poor_households=0,
    )
    assert moved.kind == "rule:enterprise_changed"
    assert story.certify("c-1", "sugar", "ent-2", "gap").kind == "rule:unknown_product"
    assert story.certify("c-2", "sugar", "ent-9", "gap").kind == "rule:unknown_enterprise"


def test_households_reached_are_those_of_the_latest_registration_of_active_enterprises(story: Story) -> None:
    story.register("ent-2", target_poor_households=7)  # never sells: not counted
    story.batch("b-1", "ent-1", "sugar", 10, "2025-03-01")
    story.list("sugar", "ent-1", "local_market", "20.00")
    story.order("o-1", "local_market", ("sugar", 1, "20.00"))
    story.pay("o-1", "20.00")
    story.register("ent-1", members=30, target_poor_households=12)
    row = story.province()
    assert (row["enterprises"], row["active_enterprises"], row["target_poor_households_reached"]) == (2, 1, 12)


def _registration(writer: EventWriter, members: int = 10) -> Sent:
    data = {
        "enterprise_id": "t-ent",
        "name": "Ban Nong Bua weaving group",
        "province": "Nan",
        "sector": "processing",
        "members": members,
        "target_poor_households": 2,
    }
    return writer.build("th.fivecogs.enterprise.registered.v1", data, source=PARTNER, time=NOON)


def test_the_same_event_again_is_a_duplicate_and_other_data_under_its_id_a_conflict() -> None:
    model, writer = ChainModel(), EventWriter("t")
    first = _registration(writer)
    assert model.apply(first).kind == "accepted"
    assert model.apply(first) == Outcome("duplicate")
    changed = with_value(first, json.dumps({**first.data(), "members": 11}).encode(), "conflict", "")
    conflict = model.apply(changed)
    assert conflict.dead_letter == DeadLetter(f"fivecogs.inputs.ingest.{PARTNER_ID}.dlq", first.event_id, "conflict")
    assert conflict.answers == (Answer(PARTNER_ID, "rejected", first.event_id, "conflict"),)
    assert model.report().provinces["Nan"].enterprises == 1


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"ce_id": None}, "malformed"),
        ({"ce_time": b"2025-06-10T12:00:00"}, "malformed"),
        ({"ce_specversion": b"0.3"}, "malformed"),
        ({"content-type": b"text/plain"}, "malformed"),
        ({"ce_type": b"th.fivecogs.order.placed.v1"}, "unknown_type"),
    ],
)
def test_records_with_bad_headers_are_dead_letters(changes: dict[str, bytes | None], kind: str) -> None:
    sent = with_headers(_registration(EventWriter("t")), changes, kind, "")
    outcome = ChainModel().apply(sent)
    assert outcome.kind == kind
    assert outcome.dead_letter is not None
    assert outcome.dead_letter.ident == (sent.event_id or "key:t-ent")


@pytest.mark.parametrize(
    ("value", "key", "kind"),
    [
        (b"{not json", b"t-ent", "malformed"),
        (b'{"enterprise_id": "t-ent"}', b"t-ent", "schema"),
        (None, b"other", "schema"),
        (b'{"name": "' + b"x" * (256 * 1024) + b'"}', b"t-ent", "oversized"),
    ],
)
def test_records_with_bad_values_or_keys_are_dead_letters(value: bytes | None, key: bytes, kind: str) -> None:
    sent = _registration(EventWriter("t"))
    assert ChainModel().apply(with_value(sent, value or sent.value, kind, "", key)).kind == kind


def test_households_above_members_is_a_schema_error() -> None:
    writer = EventWriter("t")
    sent = _registration(writer)
    broken = with_value(sent, json.dumps({**sent.data(), "target_poor_households": 11}).encode(), "schema", "")
    assert ChainModel().apply(broken).kind == "schema"


def test_money_stays_decimal(story: Story) -> None:
    story.batch("b-1", "ent-1", "sugar", 3, "2025-03-01", ("10.00", True))
    story.list("sugar", "ent-1", "local_market", "0.10")
    story.order("o-1", "local_market", ("sugar", 3, "0.10"))
    story.pay("o-1", "0.30")
    row = story.model.report().provinces["Phetchaburi"]
    assert row.revenue_thb == Decimal("0.30")  # 3 x 0.10 exactly, as no float would give
    assert isinstance(row.margin_thb, Decimal)


def test_an_event_claiming_another_partners_source_is_refused_before_the_inbox() -> None:
    writer = EventWriter("t")
    claimed = with_headers(_registration(writer), {"ce_source": b"partner/cdd-korat"}, "unauthorized_source", "")
    model = ChainModel()
    refused = model.apply(claimed)
    assert refused == Outcome(
        "unauthorized_source", (Answer(PARTNER_ID, "rejected", claimed.event_id, "unauthorized_source"),)
    )
    assert model.inbox == {}  # the claimed (source, id) stays free for its real owner
    assert model.report() == ChainModel().report()


# --- holds: an event that refers to something not applied yet waits for it ----------------------------------


def _delivery(story: Story, batch: str, delivery: str, cost: str, enterprise: str = "ent-1") -> Outcome:
    return story.send(
        "input.delivered",
        delivery_id=delivery,
        batch_id=batch,
        enterprise_id=enterprise,
        item="toddy palm sap",
        quantity="12.5",
        unit="l",
        cost_thb=cost,
        local_source=True,
    )


def _produced(story: Story, batch: str, product: str, quantity: int, enterprise: str = "ent-1", **v2: Any) -> Outcome:
    fields = {"product_name": "Palm sugar 500 g", "unit": "pack", "produced_on": "2025-03-01", **v2}
    version = "v2" if v2 else "v1"
    return story.model.apply(
        story.writer.event(
            f"th.fivecogs.batch.produced.{version}",
            {"batch_id": batch, "enterprise_id": enterprise, "product_id": product, "quantity": quantity, **fields},
            source=PARTNER,
            time=NOON,
        )
    )


def test_an_event_before_what_it_refers_to_waits_and_is_applied_when_that_comes() -> None:
    story = Story()
    raw = story.model.apply(
        story.writer.event(
            "th.fivecogs.training.completed.v1",
            {
                "training_id": "t-1",
                "enterprise_id": "ent-1",
                "topic": "bookkeeping",
                "participants": 5,
                "completed_on": "2025-02-01",
            },
            source=PARTNER,
            time=NOON,
        )
    )
    assert (raw.kind, raw.awaits, raw.reason) == (HELD, "enterprise:ent-1", "rule:unknown_enterprise")
    assert _delivery(story, "b-1", "d-1", "30.00").kind == "rule:unknown_enterprise"  # while it waits
    story.register("ent-1")
    _produced(story, "b-1", "sugar", 10)
    story.list("sugar", "ent-1", "local_market", "20.00")
    story.order("o-1", "local_market", ("sugar", 10, "20.00"))
    story.pay("o-1", "200.00")
    outcomes = story.model.finish()
    assert [o.kind for o in outcomes[:2]] == ["accepted", "accepted"]
    trained = Answer(PARTNER_ID, "accepted", outcomes[0].answers[0].subject, "th.fivecogs.training.completed.v1")
    assert outcomes[0].answers == (trained,)  # answered once it is applied
    assert story.province()["cost_thb"] == "30.00"  # the delivery was taken in before the batch


def test_a_batch_that_names_its_deliveries_waits_for_each_and_costs_exactly_those() -> None:
    story = Story()
    story.register("ent-1")
    named = _produced(story, "b-1", "sugar", 10, delivery_ids=["d-1", "d-2"])
    assert (named.kind, named.awaits) == (HELD, "delivery:b-1:d-1")
    _delivery(story, "b-1", "d-2", "5.00")
    assert story.model.outcomes[1] is None  # still waiting, now for d-1
    _delivery(story, "b-1", "d-1", "7.50")
    assert story.model.outcomes[1] == Outcome(
        "accepted", (Answer(PARTNER_ID, "accepted", named_id(story, 1), "th.fivecogs.batch.produced.v2"),)
    )
    assert _delivery(story, "b-1", "d-3", "1.00").kind == "rule:batch_closed"
    unnamed = _produced(story, "b-2", "sugar", 10, delivery_ids=["d-9"])
    assert unnamed.kind == HELD
    _delivery(story, "b-2", "d-8", "1.00")  # taken in by the open batch, which never named it
    _delivery(story, "b-2", "d-9", "1.00")
    assert story.model.finish()[5].kind == "rule:delivery_not_named"
    assert story.model.chain.stock["sugar"][0].cost == Decimal("12.50")


def named_id(story: Story, index: int) -> str:
    """The ce_id of the story's index-th event."""
    return story.writer.history[index].event_id


def test_a_listing_waits_for_its_batch_then_for_a_certificate_that_opens_the_channel(story: Story) -> None:
    story.send("subscription.created", subscriber_id="s", network="media", topics=["listing", "certification"])
    assert story.list("sugar", "ent-1", "retail", "25.00").kind == "rule:unknown_product"
    _produced(story, "b-1", "sugar", 10)
    waiting = story.model.held[0]
    assert (waiting.awaits, waiting.reason) == ("certification:sugar", "rule:certification_required")
    story.certify("c-1", "sugar", "ent-1", "gap")  # does not open retail: it waits on
    assert len(story.model.held) == 1
    story.certify("c-2", "sugar", "ent-1", "tcps")
    assert not story.model.held
    assert story.model.chain.listings[("sugar", "retail")] == Decimal("25.00")
    assert story.province()["notices"] == 3  # two certifications, then the listing


def test_events_held_for_one_reference_are_applied_in_the_order_they_arrived(story: Story) -> None:
    story.batch("b-1", "ent-1", "sugar", 5, "2025-03-01")
    story.order("o-1", "local_market", ("sugar", 4, "20.00"))
    story.order("o-2", "local_market", ("sugar", 3, "20.00"))
    assert len(story.model.held) == 2
    story.list("sugar", "ent-1", "local_market", "20.00")
    outcomes = story.model.finish()
    assert [o.kind for o in outcomes[-3:-1]] == ["accepted", "rule:insufficient_stock"]  # first come, first served


def test_what_never_comes_expires_with_the_rule_it_breaks_then(story: Story) -> None:
    assert story.pay("o-9", "10.00").kind == "rule:unknown_order"
    assert story.model.outcomes[-1] is None
    outcome = story.model.finish()[-1]
    assert outcome.kind == "rule:unknown_order"
    assert outcome.answers == (Answer(PARTNER_ID, "rejected", outcome.answers[0].subject, "rule:unknown_order"),)


def test_a_settlement_is_shared_by_the_policy_in_force_at_its_payment_whenever_that_arrives() -> None:
    story = Story()
    story.register("ent-n", province="Nan")
    story.batch("b-1", "ent-n", "cloth", 10, "2025-03-01")
    story.list("cloth", "ent-n", "local_market", "10.00")
    story.order("o-1", "local_market", ("cloth", 10, "10.00"))
    story.send("payment.received", at=NOON + timedelta(days=30), payment_id="p-1", order_id="o-1", amount_thb="100.00")
    shares = {"province": "Nan", "community_fund_share": "0.30", "reinvest_share": "0.10"}
    story.send("distribution.policy.set", at=NOON + timedelta(days=60), members_share="0.60", **shares)  # later
    assert story.province("Nan")["members_income_thb"] == "60.00"
    story.send(
        "distribution.policy.set",
        at=NOON,
        members_share="0.50",
        community_fund_share="0.40",
        reinvest_share="0.10",
        province="Nan",
    )  # earlier, received late: it was in force at the payment
    assert story.province("Nan")["members_income_thb"] == "50.00"
