"""Prometheus metrics of one service, in a registry of its own (FastStream's middleware shares it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class ServiceMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter(
            "fivecogs_events_total", "Events taken in, by topic and outcome", ["topic", "outcome"], registry=r
        )
        self.rejections = Counter(
            "fivecogs_rejections_total", "Partner events rejected, by reason", ["reason"], registry=r
        )
        self.dlq_records = Counter(
            "fivecogs_dlq_records_total",
            "Records sent to a dead-letter topic, by reason",
            ["reason"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "fivecogs_batch_processing_seconds",
            "Time to process one polled batch in one transaction",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.transient_retries = Counter(
            "fivecogs_transient_retries_total", "Batches retried after a transient error", registry=r
        )
        self.outbox_backlog = Gauge("fivecogs_outbox_backlog", "Outbox rows not yet relayed", registry=r)
        self.outbox_parked_total = Counter(
            "fivecogs_outbox_parked_total",
            "Outbox rows Kafka refused for good, parked, by topic",
            ["topic"],
            registry=r,
        )
        # Not `fivecogs_outbox_parked`: that name is the counter's family, and a registry refuses it twice.
        self.outbox_parked_rows = Gauge(
            "fivecogs_outbox_parked_rows", "Outbox rows parked in outbox_parked now", registry=r
        )
        self.outbox_oldest_seconds = Gauge(
            "fivecogs_outbox_oldest_unsent_seconds",
            "Age of the oldest outbox row not yet relayed",
            registry=r,
        )
        self.events_held = Gauge(
            "fivecogs_events_held",
            "Events held until what they refer to is applied, by service and reason",
            ["service", "reason"],
            registry=r,
        )
        self.events_held_oldest = Gauge(
            "fivecogs_events_held_oldest_seconds",
            "How long the oldest held event has waited, by service and reason",
            ["service", "reason"],
            registry=r,
        )


def count_batch(counter: Counter, tally: Mapping[Any, float]) -> None:
    """Add a batch's tally to a labelled counter: one `.labels(...).inc(n)` per distinct label values instead of
    one per event (a label lookup costs about a microsecond). Keys are the label values, one string for a single
    label; an amount of zero creates no series."""
    for labels, amount in tally.items():
        if amount:
            counter.labels(*((labels,) if isinstance(labels, str) else labels)).inc(amount)
