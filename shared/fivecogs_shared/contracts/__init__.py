"""Event contracts: `partner` (what partners publish), `internal` (what cogs tell each other) and `feedback`
(what partners are told). Partner and internal models share domain names (partner.OrderCancelled,
internal.OrderCancelled), so import the module and qualify the model; the registries and topics are here."""

from fivecogs_shared.contracts.feedback import FEEDBACK_EVENT_TYPES, FeedbackEventType
from fivecogs_shared.contracts.internal import INTERNAL_EVENT_TYPES, InternalEventType, internal_type
from fivecogs_shared.contracts.partner import (
    DEFAULT_DISTRIBUTION_POLICY,
    PARTNER_EVENT_TYPES,
    PartnerEventType,
)
from fivecogs_shared.contracts.topics import (
    COGS,
    UPSTREAM,
    Cog,
    dlq_topic,
    events_topic,
    feedback_topic,
    ingest_topic,
    partner_of_topic,
)

__all__ = [
    "COGS",
    "DEFAULT_DISTRIBUTION_POLICY",
    "FEEDBACK_EVENT_TYPES",
    "INTERNAL_EVENT_TYPES",
    "PARTNER_EVENT_TYPES",
    "UPSTREAM",
    "Cog",
    "FeedbackEventType",
    "InternalEventType",
    "PartnerEventType",
    "dlq_topic",
    "events_topic",
    "feedback_topic",
    "ingest_topic",
    "internal_type",
    "partner_of_topic",
]
