"""The size limits fit together: what a service accepts reaches it, a dead-letter copy of it fits its DLQ topic,
and whatever a topic takes passes the relay's producer."""

from __future__ import annotations

from fivecogs_shared import outbox
from fivecogs_shared.contracts.topics import (
    DLQ_MAX_MESSAGE_BYTES,
    DLQ_MAX_RECORD_BYTES,
    RECORD_OVERHEAD_BYTES,
    TOPIC_MAX_MESSAGE_BYTES,
    dlq_topic,
    events_topic,
    ingest_topic,
    max_message_bytes,
    record_bytes,
)
from fivecogs_shared.kafka_admin import RETAIN_FOREVER, TopicSpec
from fivecogs_shared.settings import load_settings


def test_each_kind_of_topic_has_its_limit() -> None:
    assert max_message_bytes(ingest_topic("inputs", "coop-1")) == TOPIC_MAX_MESSAGE_BYTES == 1024 * 1024
    assert max_message_bytes(events_topic("marketing")) == TOPIC_MAX_MESSAGE_BYTES
    assert max_message_bytes("fivecogs.feedback.coop-1") == TOPIC_MAX_MESSAGE_BYTES
    assert max_message_bytes(dlq_topic(ingest_topic("inputs", "coop-1"))) == DLQ_MAX_MESSAGE_BYTES == 4 * 1024 * 1024
    assert max_message_bytes(f"{events_topic('marketing')}.dlq") == DLQ_MAX_MESSAGE_BYTES


def test_an_oversized_partner_value_still_reaches_the_service() -> None:
    # The service answers it with an "oversized" dead letter; the broker would only answer with a produce error.
    assert load_settings("inputs").max_value_bytes < TOPIC_MAX_MESSAGE_BYTES


def test_a_copy_of_anything_a_source_topic_takes_fits_its_dlq() -> None:
    reason_headers = [("fivecogs_error_kind", b"oversized"), ("fivecogs_error_detail", b"d" * 8 * 1024)]
    assert TOPIC_MAX_MESSAGE_BYTES + record_bytes(None, None, reason_headers) <= DLQ_MAX_RECORD_BYTES
    assert DLQ_MAX_RECORD_BYTES + RECORD_OVERHEAD_BYTES <= DLQ_MAX_MESSAGE_BYTES


def test_the_relay_producer_takes_whatever_a_topic_takes() -> None:
    assert outbox.RELAY_MAX_REQUEST_BYTES >= DLQ_MAX_MESSAGE_BYTES
    # A record a topic refuses for size is larger than a batch, so it is alone in its batch: only it is refused.
    assert outbox.RELAY_BATCH_BYTES < TOPIC_MAX_MESSAGE_BYTES


def test_record_bytes_counts_key_value_and_headers() -> None:
    assert record_bytes(b"key", b"value", [("ce_id", b"1"), ("empty", None)]) == 3 + 5 + 5 + 1 + 5
    assert record_bytes(None, b"", []) == 0


def test_a_topic_spec_manages_max_message_bytes_by_kind_and_retention_only_at_creation() -> None:
    assert TopicSpec("fivecogs.inputs.ingest.dlq").managed() == {"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)}
    assert TopicSpec("fivecogs.inputs.events").managed() == {"max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)}
    assert TopicSpec("x", max_message_bytes=2048).managed() == {"max.message.bytes": "2048"}
    created = TopicSpec("fivecogs.inputs.events").new_topic()
    assert created.topic_configs == {**RETAIN_FOREVER, "max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)}
