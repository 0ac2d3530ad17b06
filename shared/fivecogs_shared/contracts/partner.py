"""Partner contract v1: what partners may publish on `fivecogs.<cog>.ingest`.

This contract is fixed: partners code against it (docs/partners.md), so a change here is a new `.v2` type,
never an edit. The vocabulary defined here (ids, sectors, schemes, channels...) is reused by the internal and
feedback contracts, so every cog speaks of an enterprise or a channel in the same words.
"""

from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    Strict,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from fivecogs_shared.contracts.topics import Cog
from fivecogs_shared.money import PositiveThb, Quantity, Share, Thb
from fivecogs_shared.provinces import Province

__all__ = [
    "DEFAULT_DISTRIBUTION_POLICY",
    "PARTNER_EVENT_TYPES",
    "BatchProduced",
    "CalendarDate",
    "CertificationGranted",
    "Channel",
    "Contract",
    "Count",
    "DistributionPolicySet",
    "DistributionShares",
    "EnterpriseRegistered",
    "Id",
    "InputDelivered",
    "ListingRequested",
    "Name",
    "Network",
    "NoticeTopic",
    "OrderCancelled",
    "OrderLine",
    "OrderPlaced",
    "PartnerEventType",
    "PaymentReceived",
    "Scheme",
    "Sector",
    "SubscriptionCreated",
    "Timestamp",
    "TrainingCompleted",
    "check_certification_level",
    "partner_types_of",
    "reject_duplicates",
]


class Contract(BaseModel):
    """Base of every event body: unknown fields are errors (a misspelt optional field would otherwise vanish
    silently) and a received event cannot be altered on its way through a service."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


Id = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# Strict: "3", 3.0 and true are not counts, and a date is not a number of seconds.
Count = Annotated[StrictInt, Field(ge=1)]
MAX_BATCH_DELIVERIES = 100
CalendarDate = Annotated[date, Strict()]
Timestamp = Annotated[AwareDatetime, Strict()]

Sector = Literal["agriculture", "processing", "community_tourism"]
Scheme = Literal["otop_stars", "tcps", "gap", "halal", "cbt_standard"]
Channel = Literal["local_market", "pracharat_market", "otop_trader", "online", "retail", "tourism"]
Network = Literal["state", "private", "civil_society", "academia", "religion", "media", "people"]
NoticeTopic = Literal["certification", "listing", "sale", "distribution"]


def check_certification_level(scheme: Scheme, level: int | None) -> None:
    # Only OTOP grades products (1-5 stars); the other schemes are pass/fail, so a level there is a mistake.
    if scheme == "otop_stars" and level is None:
        raise ValueError("level (1-5) is required for otop_stars")
    if scheme != "otop_stars" and level is not None:
        raise ValueError(f"level must be null for {scheme}; only otop_stars has levels")


def reject_duplicates(what: str, values: Iterable[Hashable]) -> None:
    repeated = sorted(str(value) for value, times in Counter(values).items() if times > 1)
    if repeated:
        raise ValueError(f"{what} may appear only once; repeated: {', '.join(repeated)}")


# --- inputs ---------------------------------------------------------------------------------------------


class EnterpriseRegistered(Contract):
    enterprise_id: Id
    name: Name
    province: Province
    sector: Sector
    members: Count
    target_poor_households: Annotated[StrictInt, Field(ge=0)]

    @model_validator(mode="after")
    def _households_are_members(self) -> Self:
        if self.target_poor_households > self.members:
            raise ValueError("target_poor_households cannot exceed members")
        return self


class InputDelivered(Contract):
    delivery_id: Id
    batch_id: Id
    enterprise_id: Id
    item: Name
    quantity: Annotated[Quantity, Field(gt=0)]
    unit: Name
    cost_thb: Thb
    local_source: StrictBool


class BatchProduced(Contract):
    batch_id: Id
    enterprise_id: Id
    product_id: Id
    product_name: Name
    quantity: Count
    unit: Name
    produced_on: CalendarDate


class BatchProducedV2(BatchProduced):
    """v2 adds the producer's lot number and a best-before date; v1 events are upcast to it (no lot, no expiry),
    so handlers know one shape."""

    lot: Id | None = None
    expires_on: CalendarDate | None = None
    # The deliveries the batch was made from: it waits for each and costs exactly those, in any arrival order.
    delivery_ids: Annotated[list[Id], Field(max_length=MAX_BATCH_DELIVERIES)] | None = None

    @model_validator(mode="after")
    def _expires_after_production(self) -> Self:
        if self.expires_on is not None and self.expires_on < self.produced_on:
            raise ValueError("expires_on cannot be before produced_on")
        if self.delivery_ids is not None and len(set(self.delivery_ids)) != len(self.delivery_ids):
            raise ValueError("delivery_ids names a delivery twice")
        return self

    @classmethod
    def from_v1(cls, v1: BaseModel) -> Self:
        return cls.model_validate(v1.model_dump())


# --- knowledge ------------------------------------------------------------------------------------------


class TrainingCompleted(Contract):
    training_id: Id
    enterprise_id: Id
    topic: Name
    participants: Count
    completed_on: CalendarDate


class CertificationGranted(Contract):
    certificate_id: Id
    product_id: Id
    enterprise_id: Id
    scheme: Scheme
    level: Annotated[StrictInt, Field(ge=1, le=5)] | None = None
    valid_from: CalendarDate
    valid_until: CalendarDate

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_certification_level(self.scheme, self.level)
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until cannot be before valid_from")
        return self


# --- marketing ------------------------------------------------------------------------------------------


class ListingRequested(Contract):
    listing_id: Id
    product_id: Id
    enterprise_id: Id
    channel: Channel
    unit_price_thb: PositiveThb


class OrderLine(Contract):
    product_id: Id
    quantity: Count
    unit_price_thb: PositiveThb


class OrderPlaced(Contract):
    order_id: Id
    buyer_id: Id
    channel: Channel
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=100)]
    placed_at: Timestamp

    @model_validator(mode="after")
    def _one_line_per_product(self) -> Self:
        reject_duplicates("a product", (line.product_id for line in self.lines))
        return self


class OrderCancelled(Contract):
    order_id: Id
    reason: Name


class PaymentReceived(Contract):
    payment_id: Id
    order_id: Id
    amount_thb: PositiveThb


# --- communication --------------------------------------------------------------------------------------


class SubscriptionCreated(Contract):
    subscriber_id: Id
    network: Network
    provinces: list[Province] = Field(default_factory=list, description="empty means every province")
    topics: Annotated[list[NoticeTopic], Field(min_length=1)]
    webhook_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _sets(self) -> Self:
        reject_duplicates("a province", self.provinces)
        reject_duplicates("a topic", self.topics)
        return self


# --- management -----------------------------------------------------------------------------------------


class DistributionPolicySet(Contract):
    province: Province
    members_share: Share
    community_fund_share: Share
    reinvest_share: Share

    @model_validator(mode="after")
    def _whole_margin(self) -> Self:
        # Exactly 1: a policy summing to 0.99 would leave one baht in a hundred undistributed.
        total = self.members_share + self.community_fund_share + self.reinvest_share
        if total != 1:
            raise ValueError(f"the three shares must sum to exactly 1, not {total}")
        return self


@dataclass(frozen=True)
class DistributionShares:
    members_share: Decimal
    community_fund_share: Decimal
    reinvest_share: Decimal


# Used for a province until a partner sets its policy.
DEFAULT_DISTRIBUTION_POLICY = DistributionShares(
    members_share=Decimal("0.60"), community_fund_share=Decimal("0.30"), reinvest_share=Decimal("0.10")
)


# --- registry -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerEventType:
    ce_type: str
    cog: Cog
    key_field: str  # the Kafka key is this field's value, so one entity's events stay in order
    model: type[BaseModel]
    # An older version names the version its handler knows and how to turn its data into that version's.
    handled_as: str | None = None
    upcast: Callable[[BaseModel], BaseModel] | None = None

    def __post_init__(self) -> None:
        if self.key_field not in self.model.model_fields:
            raise ValueError(f"{self.ce_type}: {self.model.__name__} has no key field {self.key_field!r}")


PARTNER_EVENT_TYPES: dict[str, PartnerEventType] = {
    event_type.ce_type: event_type
    for event_type in (
        PartnerEventType("th.fivecogs.enterprise.registered.v1", "inputs", "enterprise_id", EnterpriseRegistered),
        PartnerEventType("th.fivecogs.input.delivered.v1", "inputs", "batch_id", InputDelivered),
        PartnerEventType(
            "th.fivecogs.batch.produced.v1",
            "inputs",
            "batch_id",
            BatchProduced,
            handled_as="th.fivecogs.batch.produced.v2",
            upcast=BatchProducedV2.from_v1,
        ),
        PartnerEventType("th.fivecogs.batch.produced.v2", "inputs", "batch_id", BatchProducedV2),
        PartnerEventType("th.fivecogs.training.completed.v1", "knowledge", "enterprise_id", TrainingCompleted),
        PartnerEventType("th.fivecogs.certification.granted.v1", "knowledge", "product_id", CertificationGranted),
        PartnerEventType("th.fivecogs.listing.requested.v1", "marketing", "product_id", ListingRequested),
        PartnerEventType("th.fivecogs.order.placed.v1", "marketing", "order_id", OrderPlaced),
        PartnerEventType("th.fivecogs.order.cancelled.v1", "marketing", "order_id", OrderCancelled),
        PartnerEventType("th.fivecogs.payment.received.v1", "marketing", "order_id", PaymentReceived),
        PartnerEventType("th.fivecogs.subscription.created.v1", "communication", "subscriber_id", SubscriptionCreated),
        PartnerEventType("th.fivecogs.distribution.policy.set.v1", "management", "province", DistributionPolicySet),
    )
}


def partner_types_of(cog: str) -> dict[str, PartnerEventType]:
    """The types accepted on one cog's ingest topic; any other ce_type there is `unknown_type`."""
    return {ce_type: t for ce_type, t in PARTNER_EVENT_TYPES.items() if t.cog == cog}
