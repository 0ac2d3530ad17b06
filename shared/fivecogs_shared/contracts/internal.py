"""Internal domain events: what each cog publishes on `fivecogs.<cog>.events` (ce_source `fivecogs/<cog>`).

Every event carries its province (and whatever else a downstream cog reports on), so no cog ever has to ask
another for a lookup: a cog's state is built from events alone.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, Field, StrictBool, StrictInt, StringConstraints, model_validator

from fivecogs_shared.contracts import partner
from fivecogs_shared.contracts.feedback import RuleReason
from fivecogs_shared.contracts.partner import (
    CalendarDate,
    Channel,
    Contract,
    Count,
    Id,
    Name,
    Network,
    NoticeTopic,
    Scheme,
    Sector,
    Timestamp,
    check_certification_level,
    reject_duplicates,
)
from fivecogs_shared.contracts.topics import Cog
from fivecogs_shared.money import PositiveThb, Quantity, Share, SignedThb, Thb
from fivecogs_shared.provinces import Province, Region, region_of

__all__ = [
    "INTERNAL_EVENT_TYPES",
    "AcceptedLine",
    "BatchAssessed",
    "BatchProduced",
    "CertificationAccepted",
    "DerivedId",
    "DistributionMade",
    "EnterpriseRegistered",
    "HeldCertification",
    "InputDelivered",
    "InternalEventType",
    "ListingAccepted",
    "NoticePublished",
    "OrderAccepted",
    "OrderCancelled",
    "OrderRejected",
    "SettlementRecorded",
    "StockPortion",
    "TrainingRecorded",
    "internal_type",
    "internal_types_of",
]

# Ids fivecogs composes from others (settlement "<order_id>:<enterprise_id>", event ids), hence longer.
DerivedId = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Ids = list[Id]


def internal_type(cog: str, name: str) -> str:
    return f"th.fivecogs.{cog}.{name}.v1"


def _no_more_than(part: Decimal, whole: Decimal, what: str) -> None:
    if part > whole:
        raise ValueError(f"{what} ({part}) cannot exceed cost_thb ({whole})")


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


# --- inputs ---------------------------------------------------------------------------------------------


class EnterpriseRegistered(Contract):
    enterprise_id: Id
    name: Name
    province: Province
    region: Region
    sector: Sector
    members: Count
    target_poor_households: Annotated[StrictInt, Field(ge=0)]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.target_poor_households > self.members:
            raise ValueError("target_poor_households cannot exceed members")
        if self.region != region_of(self.province):
            raise ValueError(f"{self.province} is in the {region_of(self.province)} region, not {self.region}")
        return self


class InputDelivered(Contract):
    delivery_id: Id
    batch_id: Id
    enterprise_id: Id
    province: Province
    item: Name
    quantity: Annotated[Quantity, Field(gt=0)]
    unit: Name
    cost_thb: Thb
    local_source: StrictBool


class _BatchFacts(Contract):
    """What inputs knows of a batch; knowledge passes it on whole in batch.assessed."""

    batch_id: Id
    enterprise_id: Id
    province: Province
    sector: Sector
    product_id: Id
    product_name: Name
    quantity: Count
    unit: Name
    produced_on: CalendarDate
    cost_thb: Thb
    non_local_cost_thb: Thb  # the part of cost_thb spent outside the locality: money that left it
    delivery_ids: Ids
    lot: Id | None = None  # since partner batch.produced.v2
    expires_on: CalendarDate | None = None

    @model_validator(mode="after")
    def _local_part(self) -> Self:
        _no_more_than(self.non_local_cost_thb, self.cost_thb, "non_local_cost_thb")
        return self


class BatchProduced(_BatchFacts):
    pass


# --- knowledge ------------------------------------------------------------------------------------------


class TrainingRecorded(Contract):
    training_id: Id
    enterprise_id: Id
    province: Province
    topic: Name
    participants: Count
    completed_on: CalendarDate


class CertificationAccepted(partner.CertificationGranted):
    """The partner's certificate as knowledge accepted it, with the enterprise's province for notices."""

    province: Province


class HeldCertification(Contract):
    certificate_id: Id
    scheme: Scheme
    level: Annotated[StrictInt, Field(ge=1, le=5)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_certification_level(self.scheme, self.level)
        return self


class BatchAssessed(_BatchFacts):
    certifications: list[HeldCertification]  # those valid on produced_on
    trainings_completed: Annotated[StrictInt, Field(ge=0)]


# --- marketing ------------------------------------------------------------------------------------------


class ListingAccepted(Contract):
    listing_id: Id
    product_id: Id
    enterprise_id: Id
    province: Province
    channel: Channel
    unit_price_thb: PositiveThb
    listed_at: Timestamp


class StockPortion(Contract):
    """Units of one line taken from one batch (FIFO), with that batch's cost for those units."""

    batch_id: Id
    quantity: Count
    cost_thb: Thb
    non_local_cost_thb: Thb

    @model_validator(mode="after")
    def _local_part(self) -> Self:
        _no_more_than(self.non_local_cost_thb, self.cost_thb, "non_local_cost_thb")
        return self


class AcceptedLine(Contract):
    product_id: Id
    enterprise_id: Id
    quantity: Count
    unit_price_thb: PositiveThb
    portions: Annotated[list[StockPortion], Field(min_length=1)]

    @model_validator(mode="after")
    def _portions_cover_line(self) -> Self:
        taken = sum(portion.quantity for portion in self.portions)
        if taken != self.quantity:
            raise ValueError(f"portions hold {taken} units of {self.product_id}, the line {self.quantity}")
        return self


class OrderAccepted(Contract):
    order_id: Id
    buyer_id: Id
    channel: Channel
    placed_at: Timestamp
    total_thb: PositiveThb
    lines: Annotated[list[AcceptedLine], Field(min_length=1, max_length=100)]

    @model_validator(mode="after")
    def _total_of_lines(self) -> Self:
        reject_duplicates("a product", (line.product_id for line in self.lines))
        total = _sum(line.unit_price_thb * line.quantity for line in self.lines)
        if total != self.total_thb:
            raise ValueError(f"total_thb {self.total_thb} is not the sum of the lines, {total}")
        return self


class OrderRejected(Contract):
    order_id: Id
    buyer_id: Id
    reason: RuleReason
    detail: str


class OrderCancelled(Contract):
    order_id: Id
    reason: Name


class SettlementRecorded(Contract):
    """One enterprise's part of a paid order: what it earned and what it cost."""

    settlement_id: DerivedId
    order_id: Id
    payment_id: Id
    enterprise_id: Id
    province: Province
    revenue_thb: Thb
    cost_thb: Thb
    non_local_cost_thb: Thb
    product_ids: Annotated[Ids, Field(min_length=1)]
    settled_at: Timestamp

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # Derived, not chosen: a replayed payment must land on the same settlement.
        if self.settlement_id != f"{self.order_id}:{self.enterprise_id}":
            raise ValueError("settlement_id must be '<order_id>:<enterprise_id>'")
        _no_more_than(self.non_local_cost_thb, self.cost_thb, "non_local_cost_thb")
        return self


# --- management -----------------------------------------------------------------------------------------


class DistributionMade(Contract):
    distribution_id: DerivedId
    settlement_id: DerivedId
    enterprise_id: Id
    province: Province
    margin_thb: SignedThb
    members_thb: Thb
    community_fund_thb: Thb
    reinvest_thb: Thb
    members_share: Share
    community_fund_share: Share
    reinvest_share: Share
    product_ids: Annotated[Ids, Field(min_length=1)]

    @model_validator(mode="after")
    def _whole_margin(self) -> Self:
        if self.members_share + self.community_fund_share + self.reinvest_share != 1:
            raise ValueError("the three shares must sum to exactly 1")
        # Every satang of a positive margin goes back (rounding remainders included); a loss distributes 0.
        paid_out = self.members_thb + self.community_fund_thb + self.reinvest_thb
        if paid_out != max(self.margin_thb, Decimal(0)):
            raise ValueError(f"the three amounts sum to {paid_out}, not the margin {self.margin_thb}")
        return self


# --- communication --------------------------------------------------------------------------------------


class NoticePublished(Contract):
    notice_id: DerivedId
    subscriber_id: Id
    network: Network
    topic: NoticeTopic
    province: Province
    subject_id: DerivedId  # the certificate, listing, settlement or distribution the notice is about
    subject_event_id: DerivedId
    product_ids: Ids
    summary: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


# --- registry -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InternalEventType:
    ce_type: str
    cog: Cog
    key_field: str
    model: type[BaseModel]
    # When an internal event gets a new version, the old one stays readable (the log is replayed from the
    # start): it names the version handlers know and how to turn its data into it.
    handled_as: str | None = None
    upcast: Callable[[BaseModel], BaseModel] | None = None

    def __post_init__(self) -> None:
        if self.key_field not in self.model.model_fields:
            raise ValueError(f"{self.ce_type}: {self.model.__name__} has no key field {self.key_field!r}")


def _event(cog: Cog, name: str, key_field: str, model: type[BaseModel]) -> InternalEventType:
    return InternalEventType(internal_type(cog, name), cog, key_field, model)


INTERNAL_EVENT_TYPES: dict[str, InternalEventType] = {
    event_type.ce_type: event_type
    for event_type in (
        _event("inputs", "enterprise.registered", "enterprise_id", EnterpriseRegistered),
        _event("inputs", "input.delivered", "batch_id", InputDelivered),
        _event("inputs", "batch.produced", "batch_id", BatchProduced),
        _event("knowledge", "training.recorded", "enterprise_id", TrainingRecorded),
        _event("knowledge", "certification.accepted", "product_id", CertificationAccepted),
        _event("knowledge", "batch.assessed", "product_id", BatchAssessed),
        _event("marketing", "listing.accepted", "product_id", ListingAccepted),
        _event("marketing", "order.accepted", "order_id", OrderAccepted),
        _event("marketing", "order.rejected", "order_id", OrderRejected),
        _event("marketing", "order.cancelled", "order_id", OrderCancelled),
        _event("marketing", "settlement.recorded", "enterprise_id", SettlementRecorded),
        _event("management", "distribution.made", "enterprise_id", DistributionMade),
        _event("communication", "notice.published", "subscriber_id", NoticePublished),
    )
}


def internal_types_of(cog: str) -> dict[str, InternalEventType]:
    """The types a cog publishes on its events topic."""
    return {ce_type: t for ce_type, t in INTERNAL_EVENT_TYPES.items() if t.cog == cog}
