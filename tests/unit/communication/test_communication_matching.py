"""Who gets a notice for which event: topic, province filter (empty = all), one per subscriber, stable ids."""

from __future__ import annotations

import json
from datetime import date

import pytest

from fivecogs_communication import domain
from fivecogs_communication.domain import Subject, Subscriber
from fivecogs_shared.contracts import internal, partner
from fivecogs_shared.errors import RuleViolation

NST, CMI = "Nakhon Si Thammarat", "Chiang Mai"


def _subject(topic: partner.NoticeTopic = "certification", province: str = NST, event_id: str = "ev-1") -> Subject:
    return Subject(topic, "cert-1", event_id, province, ("prod-1",), "a notice")


def _subscriber(
    sid: str, topics: tuple[partner.NoticeTopic, ...] = ("certification",), provinces: tuple[str, ...] = ()
) -> Subscriber:
    return Subscriber(sid, "state", provinces, topics)


def _ids(notices: list[domain.Notice]) -> list[str]:
    return [n.subscriber_id for n in notices]


def test_province_filter_keeps_only_subscribers_of_the_events_province() -> None:
    subscribers = [_subscriber("nst", provinces=(NST,)), _subscriber("cmi", provinces=(CMI,))]
    assert _ids(domain.notices_for(subscribers, _subject(province=NST))) == ["nst"]
    assert _ids(domain.notices_for(subscribers, _subject(province=CMI))) == ["cmi"]


def test_empty_provinces_means_every_province() -> None:
    everywhere = _subscriber("all")
    assert _ids(domain.notices_for([everywhere], _subject(province=NST))) == ["all"]
    assert _ids(domain.notices_for([everywhere], _subject(province="Bangkok"))) == ["all"]


def test_several_provinces_match_any_of_them() -> None:
    both = _subscriber("both", provinces=(CMI, NST))
    assert _ids(domain.notices_for([both], _subject(province=NST))) == ["both"]
    assert domain.notices_for([both], _subject(province="Bangkok")) == []


@pytest.mark.parametrize("topic", ["certification", "listing", "sale", "distribution"])
def test_topic_filter(topic: partner.NoticeTopic) -> None:
    subscribers = [_subscriber("sales", topics=("sale",)), _subscriber("many", topics=("listing", "distribution"))]
    expected = {"certification": [], "listing": ["many"], "sale": ["sales"], "distribution": ["many"]}[topic]
    assert _ids(domain.notices_for(subscribers, _subject(topic=topic))) == expected


def test_one_notice_per_matching_subscriber_per_event() -> None:
    subscribers = [
        _subscriber("b", topics=("certification", "sale"), provinces=(NST, CMI)),
        _subscriber("a"),
        _subscriber("a"),  # the same subscriber twice in the input still gets one notice
        _subscriber("c", topics=("sale",)),
    ]
    notices = domain.notices_for(subscribers, _subject())
    assert _ids(notices) == ["a", "b"]
    assert len({n.notice_id for n in notices}) == 2


def test_notice_carries_the_subject_and_the_subscriber() -> None:
    subscriber = Subscriber("sub", "media", (), ("certification",), "https://example.org/hook")
    [notice] = domain.notices_for([subscriber], _subject(event_id="ev-9"))
    assert notice.network == "media"
    assert notice.webhook_url == "https://example.org/hook"
    assert (notice.topic, notice.subject_id, notice.subject_event_id) == ("certification", "cert-1", "ev-9")
    assert (notice.province, notice.product_ids) == (NST, ("prod-1",))


def test_notice_id_is_derived_from_subscriber_and_subject_event() -> None:
    first = domain.notices_for([_subscriber("a")], _subject(event_id="ev-1"))[0].notice_id
    again = domain.notices_for([_subscriber("a")], _subject(event_id="ev-1"))[0].notice_id
    assert first == again == domain.notice_id("a", "ev-1")
    assert first != domain.notice_id("a", "ev-2")
    assert first != domain.notice_id("b", "ev-1")
    # Ids may hold any character: the two parts must not run into each other.
    assert domain.notice_id("a|b", "c") != domain.notice_id("a", "b|c")


def _command(**changes: object) -> partner.SubscriptionCreated:
    fields = {"subscriber_id": "s", "network": "people", "topics": ["sale"], "webhook_url": "https://example.org/h"}
    return partner.SubscriptionCreated.model_validate(fields | changes)


def test_subscription_replaces_with_its_own_values() -> None:
    subscriber = domain.subscribe(_command(), "cdd-nst", None)
    assert subscriber == Subscriber("s", "people", (), ("sale",), "https://example.org/h", owner="cdd-nst")
    update = domain.subscribe(_command(topics=["listing"], webhook_url=None), "cdd-nst", subscriber)
    assert update == Subscriber("s", "people", (), ("listing",), None, owner="cdd-nst")


def test_only_the_owner_replaces_a_subscription() -> None:
    theirs = domain.subscribe(_command(), "cdd-nst", None)
    with pytest.raises(RuleViolation) as refused:
        domain.subscribe(_command(webhook_url="https://attacker.example/h"), "other-partner", theirs)
    assert refused.value.reason == "rule:subscription_owned"
    assert refused.value.detail == "subscriber id s belongs to another partner"


def test_a_subscription_stored_before_owners_were_recorded_is_replaced_by_nobody() -> None:
    legacy = Subscriber("s", "people", (), ("sale",), "https://example.org/h", owner=None)
    with pytest.raises(RuleViolation, match="before fivecogs recorded owners") as refused:
        domain.subscribe(_command(), "cdd-nst", legacy)
    assert refused.value.rule == "subscription_owned"


@pytest.mark.parametrize(
    ("source", "owner"),
    [
        ("partner/cdd-nst", "cdd-nst"),
        ("partner/cdd-nst/desk-2", "cdd-nst"),  # every desk of a partner shares its subscriptions
        ("partner-test", "partner-test"),  # names no partner: the whole ce_source
        ("partner/Not_An_Id", "partner/Not_An_Id"),
    ],
)
def test_the_owner_is_the_partner_the_source_names(source: str, owner: str) -> None:
    assert domain.owner_of(source) == owner


def test_subjects_of_each_event_type() -> None:
    cert = internal.CertificationAccepted(
        certificate_id="c1",
        product_id="p1",
        enterprise_id="e1",
        province=NST,
        scheme="otop_stars",
        level=4,
        valid_from=date(2026, 1, 1),
        valid_until=date(2027, 1, 1),
    )
    listing = internal.ListingAccepted.model_validate_json(
        json.dumps(
            {
                "listing_id": "l1",
                "product_id": "p1",
                "enterprise_id": "e1",
                "province": CMI,
                "channel": "online",
                "unit_price_thb": "120.00",
                "listed_at": "2026-07-01T10:00:00+07:00",
            }
        )
    )
    settlement = internal.SettlementRecorded.model_validate_json(
        json.dumps(
            {
                "settlement_id": "o1:e1",
                "order_id": "o1",
                "payment_id": "pay1",
                "enterprise_id": "e1",
                "province": NST,
                "revenue_thb": "360.00",
                "cost_thb": "100.00",
                "non_local_cost_thb": "10.00",
                "product_ids": ["p1", "p2"],
                "settled_at": "2026-07-01T10:00:00+07:00",
            }
        )
    )
    distribution = internal.DistributionMade.model_validate_json(
        json.dumps(
            {
                "distribution_id": "o1:e1",
                "settlement_id": "o1:e1",
                "enterprise_id": "e1",
                "province": NST,
                "margin_thb": "260.00",
                "members_thb": "156.00",
                "community_fund_thb": "78.00",
                "reinvest_thb": "26.00",
                "members_share": "0.60",
                "community_fund_share": "0.30",
                "reinvest_share": "0.10",
                "product_ids": ["p1", "p2"],
            }
        )
    )
    subjects = [
        domain.certification("ev1", cert),
        domain.listing("ev2", listing),
        domain.sale("ev3", settlement),
        domain.distribution("ev4", distribution),
    ]
    assert [(s.topic, s.subject_id, s.event_id, s.province, s.product_ids) for s in subjects] == [
        ("certification", "c1", "ev1", NST, ("p1",)),
        ("listing", "l1", "ev2", CMI, ("p1",)),
        ("sale", "o1:e1", "ev3", NST, ("p1", "p2")),
        ("distribution", "o1:e1", "ev4", NST, ("p1", "p2")),
    ]
    assert "otop_stars 4 stars" in subjects[0].summary
    assert "online at 120.00 THB" in subjects[1].summary
    assert "2 products for 360.00 THB" in subjects[2].summary
    assert "members 156.00" in subjects[3].summary
