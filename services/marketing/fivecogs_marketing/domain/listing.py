"""Listings: a product offered on a channel at a price, if its certifications open that channel."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from fivecogs_shared.contracts import partner
from fivecogs_shared.errors import Awaiting

# Channels whose buyers ask for any recognised certification before they stock a product.
_ANY_CERTIFICATION = frozenset({"otop_trader", "online"})
_RETAIL_OTOP_STARS = 4  # retail takes OTOP products graded four stars or more


@dataclass(frozen=True)
class Enterprise:
    enterprise_id: str
    province: str
    sector: str


@dataclass(frozen=True)
class Certification:
    certificate_id: str
    product_id: str
    scheme: str
    level: int | None
    valid_from: date
    valid_until: date

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day <= self.valid_until


@dataclass(frozen=True)
class Listing:
    listing_id: str
    product_id: str
    enterprise_id: str
    province: str
    channel: partner.Channel
    unit_price_thb: Decimal
    listed_at: datetime


def enterprise_ref(enterprise_id: str) -> str:
    return f"enterprise:{enterprise_id}"


def product_ref(enterprise_id: str, product_id: str) -> str:
    """A product with an assessed batch of one enterprise: what its listings wait for."""
    return f"product:{enterprise_id}:{product_id}"


def certification_ref(product_id: str) -> str:
    return f"certification:{product_id}"


def listing_ref(channel: str, product_id: str) -> str:
    return f"listing:{channel}:{product_id}"


def opens_channel(channel: str, sector: str, held: Iterable[Certification]) -> bool:
    """Whether the certifications held (already filtered to the listing date) admit the product to the channel."""
    held = list(held)
    if channel in _ANY_CERTIFICATION:
        return bool(held)
    if channel == "retail":
        return any(
            c.scheme == "tcps" or (c.scheme == "otop_stars" and (c.level or 0) >= _RETAIL_OTOP_STARS) for c in held
        )
    if channel == "tourism":
        return sector == "community_tourism" and any(c.scheme == "cbt_standard" for c in held)
    return True  # local_market, pracharat_market: open to every product of the programme


def accept_listing(
    enterprise: Enterprise | None,
    makes_product: bool,
    certifications: Iterable[Certification],
    command: partner.ListingRequested,
    listed_at: datetime,
) -> Listing:
    """`makes_product`: the enterprise has at least one assessed batch of the product. Certifications count
    if valid on the UTC date of `listed_at` (the request's ce_time)."""
    if enterprise is None:
        detail = f"enterprise {command.enterprise_id} is not registered"
        raise Awaiting("unknown_enterprise", detail, enterprise_ref(command.enterprise_id))
    if not makes_product:
        detail = f"{command.enterprise_id} has no assessed batch of product {command.product_id}"
        raise Awaiting("unknown_product", detail, product_ref(command.enterprise_id, command.product_id))
    day = listed_at.astimezone(UTC).date()
    held = [c for c in certifications if c.valid_on(day)]
    if not opens_channel(command.channel, enterprise.sector, held):
        # A certification granted in time may still be on its way through knowledge: wait for it.
        detail = f"product {command.product_id} holds no certification valid on {day} that opens {command.channel}"
        raise Awaiting("certification_required", detail, certification_ref(command.product_id))
    return Listing(
        command.listing_id,
        command.product_id,
        enterprise.enterprise_id,
        enterprise.province,
        command.channel,
        command.unit_price_thb,
        listed_at,
    )
