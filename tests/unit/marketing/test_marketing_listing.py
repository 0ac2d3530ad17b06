"""Listing rules: known enterprise, a product it makes, and the channel's certification requirement on the
UTC date of the request."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from fivecogs_marketing.domain.listing import Certification, Enterprise, accept_listing
from fivecogs_shared.contracts import partner
from fivecogs_shared.errors import RuleViolation

PROCESSOR = Enterprise("ent-1", "Nakhon Si Thammarat", "processing")
TOURISM = Enterprise("ent-1", "Nan", "community_tourism")
NOON = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)


def _request(channel: str, price: str = "120.00") -> partner.ListingRequested:
    fields = {"listing_id": "lst-1", "product_id": "prod-1", "enterprise_id": "ent-1", "unit_price_thb": price}
    return partner.ListingRequested.model_validate({**fields, "channel": channel})


def _cert(scheme: str, level: int | None = None, valid: tuple[date, date] | None = None) -> Certification:
    start, end = valid or (date(2025, 1, 1), date(2025, 12, 31))
    return Certification(f"cert-{scheme}-{level}", "prod-1", scheme, level, start, end)


def _refusal(enterprise: Enterprise | None, makes: bool, certs: list[Certification], channel: str) -> str:
    with pytest.raises(RuleViolation) as refused:
        accept_listing(enterprise, makes, certs, _request(channel), NOON)
    return refused.value.rule


def test_accepted_listing_carries_the_request_and_the_enterprise_province() -> None:
    listing = accept_listing(PROCESSOR, True, [], _request("local_market", "35.50"), NOON)

    assert listing.listing_id == "lst-1"
    assert listing.channel == "local_market"
    assert listing.unit_price_thb == Decimal("35.50")
    assert listing.province == "Nakhon Si Thammarat"
    assert listing.listed_at == NOON


def test_unknown_enterprise_comes_first() -> None:
    assert _refusal(None, False, [], "retail") == "unknown_enterprise"


def test_product_without_an_assessed_batch_of_the_enterprise_is_unknown() -> None:
    assert _refusal(PROCESSOR, False, [_cert("tcps")], "local_market") == "unknown_product"


@pytest.mark.parametrize("channel", ["local_market", "pracharat_market"])
def test_open_channels_need_no_certification(channel: str) -> None:
    assert accept_listing(PROCESSOR, True, [], _request(channel), NOON).channel == channel


@pytest.mark.parametrize("channel", ["otop_trader", "online"])
def test_trader_and_online_take_any_certification(channel: str) -> None:
    assert _refusal(PROCESSOR, True, [], channel) == "certification_required"
    assert accept_listing(PROCESSOR, True, [_cert("gap")], _request(channel), NOON).channel == channel


@pytest.mark.parametrize(
    ("certs", "accepted"),
    [
        ([_cert("tcps")], True),
        ([_cert("otop_stars", 4)], True),
        ([_cert("otop_stars", 5)], True),
        ([_cert("otop_stars", 3)], False),
        ([_cert("gap"), _cert("halal"), _cert("cbt_standard")], False),
    ],
)
def test_retail_needs_tcps_or_four_otop_stars(certs: list[Certification], accepted: bool) -> None:
    if accepted:
        assert accept_listing(PROCESSOR, True, certs, _request("retail"), NOON).channel == "retail"
    else:
        assert _refusal(PROCESSOR, True, certs, "retail") == "certification_required"


def test_tourism_needs_a_community_tourism_enterprise_and_cbt_standard() -> None:
    cbt = [_cert("cbt_standard")]
    assert accept_listing(TOURISM, True, cbt, _request("tourism"), NOON).channel == "tourism"
    assert _refusal(PROCESSOR, True, cbt, "tourism") == "certification_required"
    assert _refusal(TOURISM, True, [_cert("tcps")], "tourism") == "certification_required"


def test_certification_counts_only_on_the_days_it_is_valid() -> None:
    day = NOON.date()
    assert accept_listing(PROCESSOR, True, [_cert("tcps", valid=(day, day))], _request("retail"), NOON)
    assert _refusal(PROCESSOR, True, [_cert("tcps", valid=(day + timedelta(1), day + timedelta(9)))], "retail") == (
        "certification_required"
    )
    assert _refusal(PROCESSOR, True, [_cert("tcps", valid=(day - timedelta(9), day - timedelta(1)))], "retail") == (
        "certification_required"
    )


def test_the_listing_date_is_the_utc_date_of_ce_time() -> None:
    # 2025-03-06 01:00 in Bangkok is still 2025-03-05 in UTC: a certificate valid only on the 5th counts.
    bangkok = datetime(2025, 3, 6, 1, 0, tzinfo=timezone(timedelta(hours=7)))
    only_fifth = [_cert("tcps", valid=(date(2025, 3, 5), date(2025, 3, 5)))]
    only_sixth = [_cert("tcps", valid=(date(2025, 3, 6), date(2025, 3, 6)))]

    assert accept_listing(PROCESSOR, True, only_fifth, _request("retail"), bangkok).listed_at == bangkok
    with pytest.raises(RuleViolation, match="certification_required"):
        accept_listing(PROCESSOR, True, only_sixth, _request("retail"), bangkok)
