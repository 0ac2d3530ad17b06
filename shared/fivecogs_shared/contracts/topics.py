"""Topic names: partners write to a cog's ingest topic, cogs talk to each other on their events topics."""

from typing import Literal, get_args

__all__ = ["COGS", "FEEDBACK_TOPIC", "Cog", "dlq_topic", "events_topic", "ingest_topic"]

Cog = Literal["inputs", "knowledge", "marketing", "communication", "management"]
COGS: tuple[Cog, ...] = get_args(Cog)

# Every answer to a partner (rejections, order outcomes), keyed by the partner's ce_source.
FEEDBACK_TOPIC = "fivecogs.partner.feedback"


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
