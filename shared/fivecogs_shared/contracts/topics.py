"""Topic names: partners write to a cog's ingest topic, cogs talk to each other on their events topics."""

import re
from collections.abc import Iterable
from typing import Literal, get_args

__all__ = [
    "COGS",
    "DLQ_MAX_MESSAGE_BYTES",
    "DLQ_MAX_RECORD_BYTES",
    "FEEDBACK_TOPIC",
    "PARTNER_ID",
    "PARTNER_SOURCE_PREFIX",
    "RECORD_OVERHEAD_BYTES",
    "TOPIC_MAX_MESSAGE_BYTES",
    "Cog",
    "dlq_topic",
    "events_topic",
    "ingest_topic",
    "max_message_bytes",
    "record_bytes",
    "source_partner",
]

Cog = Literal["inputs", "knowledge", "marketing", "communication", "management"]
COGS: tuple[Cog, ...] = get_args(Cog)

# A partner id: no dots, so one partner's topic names (and prefix ACLs) can never cover another's.
PARTNER_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# Partners' ce_source is `partner/<id>` or `partner/<id>/<anything>` (a desk, a branch of the same partner).
PARTNER_SOURCE_PREFIX = "partner/"

# Every answer to a partner (rejections, order outcomes), keyed by the partner's ce_source.
FEEDBACK_TOPIC = "fivecogs.partner.feedback"

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


def ingest_topic(cog: str) -> str:
    return f"fivecogs.{_checked(cog)}.ingest"


def dlq_topic(cog: str) -> str:
    return f"{ingest_topic(cog)}.dlq"


def events_topic(cog: str) -> str:
    return f"fivecogs.{_checked(cog)}.events"


def max_message_bytes(topic: str) -> int:
    """The `max.message.bytes` fivecogs gives a topic: dead-letter topics take more than the topics they copy."""
    return DLQ_MAX_MESSAGE_BYTES if topic.endswith(".dlq") else TOPIC_MAX_MESSAGE_BYTES


def record_bytes(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]]) -> int:
    """A record's own bytes, as counted against the limits above: key, value, and every header's name and value."""
    header_bytes = sum(len(name.encode("utf-8", "surrogatepass")) + len(data or b"") for name, data in headers)
    return len(key or b"") + len(value or b"") + header_bytes


def source_partner(source: str) -> str | None:
    """The partner id a ce_source names (`partner/<id>` or `partner/<id>/...`), or None."""
    if not source.startswith(PARTNER_SOURCE_PREFIX):
        return None
    partner = source[len(PARTNER_SOURCE_PREFIX) :].split("/", 1)[0]
    return partner if PARTNER_ID.fullmatch(partner) else None
