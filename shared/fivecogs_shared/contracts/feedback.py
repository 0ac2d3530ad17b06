"""What partners read on `fivecogs.partner.feedback`, keyed by the partner's ce_source: so a partner can
follow its own answers by key, and the answers to one partner stay in order."""

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, StringConstraints

from fivecogs_shared.contracts.partner import Contract, Id
from fivecogs_shared.money import PositiveThb

__all__ = [
    "FEEDBACK_EVENT_TYPES",
    "ORDER_ACCEPTED_TYPE",
    "ORDER_REJECTED_TYPE",
    "REJECTED_TYPE",
    "FeedbackEventType",
    "PartnerEventRejected",
    "PartnerOrderAccepted",
    "PartnerOrderRejected",
    "RejectionReason",
    "RuleReason",
]

REJECTED_TYPE = "th.fivecogs.partner.event.rejected.v1"
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
        FeedbackEventType(ORDER_ACCEPTED_TYPE, PartnerOrderAccepted),
        FeedbackEventType(ORDER_REJECTED_TYPE, PartnerOrderRejected),
    )
}
