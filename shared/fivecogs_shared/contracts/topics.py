"""Topic names (partner contract v2): each partner writes its own ingest topic per cog and reads its own feedback
topic, so the broker's ACLs say who produced a record; cogs talk to each other on their events topics."""

import re
from collections.abc import Iterable
from typing import Literal, get_args

__all__ = [
    "COGS",
    "DLQ_MAX_MESSAGE_BYTES",
    "DLQ_MAX_RECORD_BYTES",
    "PARTNER_ID",
    "PARTNER_SOURCE_PREFIX",
    "RECORD_OVERHEAD_BYTES",
    "TOPIC_MAX_MESSAGE_BYTES",
    "UPSTREAM",
    "Cog",
    "dlq_topic",
    "events_topic",
    "feedback_topic",
    "ingest_pattern",
    "ingest_topic",
    "max_message_bytes",
    "partner_of_topic",
    "record_bytes",
    "source_belongs_to",
    "source_partner",
    "subscription_pattern",
]

Cog = Literal["inputs", "knowledge", "marketing", "communication", "management"]
COGS: tuple[Cog, ...] = get_args(Cog)
# Whose events each cog consumes: the services' subscriptions and the ACLs that let them read.
UPSTREAM: dict[str, tuple[Cog, ...]] = {
    "inputs": (),
    "knowledge": ("inputs",),
    "marketing": ("inputs", "knowledge"),
    "communication": ("knowledge", "marketing", "management"),
    "management": ("inputs", "knowledge", "marketing", "communication"),
}

# A partner id: no dots, so one partner's topic names (and prefix ACLs) can never cover another's.
PARTNER_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# Partners' ce_source is `partner/<id>` or `partner/<id>/<anything>` (a desk, a branch of the same partner).
PARTNER_SOURCE_PREFIX = "partner/"


# Topic size limits (Kafka's `max.message.bytes`: the largest record batch a topic takes), set by ensure_topics.
# Ingest, events and feedback: 1 MiB, well above a service's 256 KiB value limit, so an oversized partner record
# still reaches the service and is answered with an "oversized" dead letter instead of a produce error.
TOPIC_MAX_MESSAGE_BYTES = 1024 * 1024
# Dead-letter topics: a copy is the original record plus reason headers, so they must take more than any
# source topic does, or the copy of a record at the source's limit could never be published.
DLQ_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# What a batch adds around one record (61-byte batch header, varints per record and header), with room to spare.
RECORD_OVERHEAD_BYTES = 16 * 1024
# The largest dead-letter copy (key, value, header names and values: `record_bytes`) a DLQ topic surely takes.
DLQ_MAX_RECORD_BYTES = DLQ_MAX_MESSAGE_BYTES - RECORD_OVERHEAD_BYTES


def _checked(cog: str) -> str:
    # A typo here would create (or wait forever on) a topic nobody else uses.
    if cog not in COGS:
        raise ValueError(f"unknown cog {cog!r}; the cogs are {', '.join(COGS)}")
    return cog


def _partner(partner: str) -> str:
    if not PARTNER_ID.fullmatch(partner):
        raise ValueError(f"partner id {partner!r} must match {PARTNER_ID.pattern} (lowercase, digits, dashes)")
    return partner


def ingest_topic(cog: str, partner: str) -> str:
    """Where one partner writes the events of one cog; only that partner's principal may write it."""
    return f"fivecogs.{_checked(cog)}.ingest.{_partner(partner)}"


def ingest_pattern(cog: str) -> str:
    """A regex for every partner's ingest topic of the cog (and not their dead-letter topics: ids have no dots)."""
    return rf"fivecogs\.{_checked(cog)}\.ingest\.[a-z0-9][a-z0-9-]*"


def subscription_pattern(cog: str, upstream: Iterable[str] | None = None) -> str:
    """Everything the cog's service consumes, as one anchored regex: its partners' ingest topics and the events
    of the cogs upstream (UPSTREAM unless given; aiokafka subscribes to topics or to a pattern, not both)."""
    cogs = UPSTREAM[cog] if upstream is None else upstream
    names = [ingest_pattern(cog), *(re.escape(events_topic(up)) for up in cogs)]
    return "^(?:" + "|".join(names) + ")$"


def partner_of_topic(topic: str) -> str | None:
    """The partner whose ingest topic this is, or None for any other topic."""
    parts = topic.split(".")
    if len(parts) == 4 and parts[0] == "fivecogs" and parts[1] in COGS and parts[2] == "ingest":
        return parts[3] if PARTNER_ID.fullmatch(parts[3]) else None
    return None


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of a topic a service consumes: `<topic>.dlq`."""
    return f"{topic}.dlq"


def feedback_topic(partner: str) -> str:
    """Every answer to one partner (rejections, order outcomes); only that partner's principal may read it."""
    return f"fivecogs.feedback.{_partner(partner)}"


def source_partner(source: str) -> str | None:
    """The partner id a ce_source names (`partner/<id>` or `partner/<id>/...`), or None."""
    if not source.startswith(PARTNER_SOURCE_PREFIX):
        return None
    partner = source[len(PARTNER_SOURCE_PREFIX) :].split("/", 1)[0]
    return partner if PARTNER_ID.fullmatch(partner) else None


def source_belongs_to(source: str, partner: str) -> bool:
    """True when the ce_source is the partner's own: what binds an event to the principal that wrote it."""
    return source_partner(source) == partner


def events_topic(cog: str) -> str:
    return f"fivecogs.{_checked(cog)}.events"


def max_message_bytes(topic: str) -> int:
    """The `max.message.bytes` fivecogs gives a topic: dead-letter topics take more than the topics they copy."""
    return DLQ_MAX_MESSAGE_BYTES if topic.endswith(".dlq") else TOPIC_MAX_MESSAGE_BYTES


def record_bytes(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]]) -> int:
    """A record's own bytes, as counted against the limits above: key, value, and every header's name and value."""
    header_bytes = sum(len(name.encode("utf-8", "surrogatepass")) + len(data or b"") for name, data in headers)
    return len(key or b"") + len(value or b"") + header_bytes
