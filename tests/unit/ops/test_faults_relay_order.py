"""The fault suite's reading of a relay crash: records sent again, and order, on what one relay writes."""

from __future__ import annotations

from fivecogs_ops.faults.verify import relay_order
from fivecogs_ops.simulate.collector import Seen


def _seen(topic: str, offset: int, ce_id: str, partition: int = 0) -> Seen:
    return Seen(topic, partition, offset, None, b"{}", (("ce_id", ce_id.encode()),))


def test_an_events_topic_sent_again_in_order_counts_its_repeats() -> None:
    ids = ["a", "b", "c", "b", "c", "d"]
    records = [_seen("fivecogs.inputs.events", n, i) for n, i in enumerate(ids)]
    assert relay_order(records) == (2, [])


def test_a_resend_that_stops_short_of_the_last_record_sent_is_an_order_violation() -> None:
    records = [_seen("fivecogs.inputs.events", n, i) for n, i in enumerate(["a", "b", "a", "c"])]
    assert relay_order(records) == (1, ["fivecogs.inputs.events/0: offset 3: record #2 follows #0"])


def test_answers_sent_again_count_though_many_services_write_feedback() -> None:
    """A relay whose first batch after a restart held only answers to partners resends only those."""
    records = [
        _seen("fivecogs.feedback.cdd-nan", 0, "answer-1"),
        _seen("fivecogs.feedback.cdd-nan", 1, "answer-2"),
        _seen("fivecogs.feedback.cdd-nan", 2, "answer-1"),
        _seen("fivecogs.feedback.otop-hub", 0, "answer-3"),
    ]
    assert relay_order(records) == (1, [])
