"""What partners read on their own `fivecogs.feedback.<partner>`, keyed by the partner id, so its answers stay
in order. Every partner event gets exactly one outcome there: `partner.event.accepted` or
`partner.event.rejected`, perhaps after a `partner.event.held` notice saying what it waits for."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, StringConstraints

from fivecogs_shared.contracts.partner import Contract, Id
from fivecogs_shared.money import PositiveThb

__all__ = [
    "ACCEPTED_TYPE",
    "FEEDBACK_EVENT_TYPES",
    "HELD_TYPE",
    "ORDER_ACCEPTED_TYPE",
    "ORDER_REJECTED_TYPE",
    "REJECTED_TYPE",
    "FeedbackEventType",
    "PartnerEventAccepted",
    "PartnerEventHeld",
    "PartnerEventRejected",
    "PartnerOrderAccepted",
    "PartnerOrderRejected",
    "RejectionReason",
    "RuleReason",
]

REJECTED_TYPE = "th.fivecogs.partner.event.rejected.v1"
ACCEPTED_TYPE = "th.fivecogs.partner.event.accepted.v1"
HELD_TYPE = "th.fivecogs.partner.event.held.v1"
ORDER_ACCEPTED_TYPE = "th.fivecogs.order.accepted.v1"
ORDER_REJECTED_TYPE = "th.fivecogs.order.rejected.v1"

# A domain rule by name, e.g. "rule:insufficient_stock". Partners branch on the name, so keep it a slug.
RuleReason = Annotated[str, StringConstraints(pattern=r"^rule:[a-z][a-z0-9_]*$")]
RejectionReason = Annotated[
    str,
    StringConstraints(
        pattern=r"^(malformed|schema|unknown_type|conflict|oversized|processing_error|unauthorized_source|rule:[a-z][a-z0-9_]*)$"
    ),
]


class PartnerEventRejected(Contract):
    # Empty when the record did not carry a readable ce_id / ce_type: the answer still has to go out.
    event_id: str
    event_type: str
    reason: RejectionReason
    detail: str


class PartnerEventAccepted(Contract):
    event_id: str
    event_type: str


class PartnerEventHeld(Contract):
    """Not an outcome: the event waits for `awaits` (e.g. "enterprise:E1") and is applied when that is, or
    rejected with `reason` at `until`."""

    event_id: str
    event_type: str
    awaits: str
    reason: RuleReason
    detail: str
    until: datetime


class PartnerOrderAccepted(Contract):
    order_id: Id
    buyer_id: Id
    total_thb: PositiveThb


class PartnerOrderRejected(Contract):
    order_id: Id
    buyer_id: Id
    reason: RuleReason
    detail: str


@dataclass(frozen=True)
class FeedbackEventType:
    """No key field: every feedback record is keyed by the partner it answers, not by a field of its data."""

    ce_type: str
    model: type[BaseModel]


FEEDBACK_EVENT_TYPES: dict[str, FeedbackEventType] = {
    event_type.ce_type: event_type
    for event_type in (
        FeedbackEventType(REJECTED_TYPE, PartnerEventRejected),
        FeedbackEventType(ACCEPTED_TYPE, PartnerEventAccepted),
        FeedbackEventType(HELD_TYPE, PartnerEventHeld),
        FeedbackEventType(ORDER_ACCEPTED_TYPE, PartnerOrderAccepted),
        FeedbackEventType(ORDER_REJECTED_TYPE, PartnerOrderRejected),
    )
}
