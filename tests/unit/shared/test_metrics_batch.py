"""count_batch adds a batch's tally to a labelled counter once per label values, as the per-event increments
would have added it."""

from __future__ import annotations

from collections import Counter as Tally

import pytest

from fivecogs_shared.metrics import ServiceMetrics, count_batch


def value(metrics: ServiceMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_batch_tally_adds_what_per_event_increments_add() -> None:
    outcomes = ["applied"] * 480 + ["rejected"] * 15 + ["duplicate"] * 5
    per_event, per_batch = ServiceMetrics(), ServiceMetrics()
    for outcome in outcomes:
        per_event.events.labels(topic="t", outcome=outcome).inc()
    count_batch(per_batch.events, Tally(("t", outcome) for outcome in outcomes))
    for outcome in ("applied", "rejected", "duplicate"):
        assert value(per_batch, "fivecogs_events_total", topic="t", outcome=outcome) == value(
            per_event, "fivecogs_events_total", topic="t", outcome=outcome
        )


def test_a_single_label_is_given_by_its_value_and_a_zero_creates_no_series() -> None:
    metrics = ServiceMetrics()
    count_batch(metrics.rejections, {"unknown_enterprise": 3, "bad_amount": 0})
    count_batch(metrics.rejections, {"unknown_enterprise": 2})
    assert value(metrics, "fivecogs_rejections_total", reason="unknown_enterprise") == 5
    assert value(metrics, "fivecogs_rejections_total", reason="bad_amount") is None


def test_a_negative_amount_is_refused_as_a_counter_refuses_it() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        count_batch(ServiceMetrics().rejections, {"x": -1})
