"""Per-row outcomes of a relayed batch: acknowledged rows are deleted, rows Kafka refuses for good are parked, and
any other failure leaves its rows in the outbox for the next drain."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaConnectionError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    MessageSizeTooLargeError,
    NotEnoughReplicasError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
    RecordTooLargeError,
    RequestTimedOutError,
    UnknownError,
    UnknownTopicOrPartitionError,
)
from aiokafka.structs import RecordMetadata, TopicPartition

from fivecogs_shared import outbox
from fivecogs_shared.outbox import Outcome, Published, outcome

ACK = RecordMetadata("t", 0, TopicPartition("t", 0), 7, -1, -1, 0)


def _row(row_id: int, topic: str = "fivecogs.inputs.events") -> dict[str, Any]:
    return {"id": row_id, "topic": topic, "key": b"k", "value": b"v", "header_names": [], "header_values": []}


def test_an_acknowledgement_means_sent() -> None:
    assert outcome(ACK) is Outcome.SENT


@pytest.mark.parametrize(
    "error",
    [
        MessageSizeTooLargeError(),
        RecordTooLargeError(),
        RecordListTooLargeError(),
        InvalidTopicError(),
        CorruptRecordException(),
    ],
)
def test_a_record_kafka_can_never_take_is_refused(error: Exception) -> None:
    assert outcome(error) is Outcome.REFUSED


@pytest.mark.parametrize(
    "error",
    [
        NotLeaderForPartitionError(),
        LeaderNotAvailableError(),
        RequestTimedOutError(),
        KafkaTimeoutError(),
        KafkaConnectionError(),
        NotEnoughReplicasError(),
        UnknownTopicOrPartitionError(),  # may be created later: waiting is the safe side
        OutOfOrderSequenceNumber(),  # a row behind a refused one on a spoiled producer: not its own fault
        UnknownError(),  # an unexpected broker error tells nothing about the row
        OSError("connection reset"),
        asyncio.CancelledError(),
    ],
)
def test_anything_else_is_retried(error: BaseException) -> None:
    assert outcome(error) is Outcome.RETRY


def test_a_batch_sorts_its_rows_and_keeps_the_first_transient_failure() -> None:
    published = Published()
    first, second = RequestTimedOutError(), KafkaConnectionError()
    for row_id, result in [(1, ACK), (2, MessageSizeTooLargeError()), (3, first), (4, ACK), (5, second)]:
        published.add(_row(row_id), result, from_broker=True)  # type: ignore[arg-type]
    assert published.sent == [1, 4]
    assert [(row["id"], error) for row, error in published.refused] == [
        (2, "broker refused: [Error 10] MessageSizeTooLargeError: " + MessageSizeTooLargeError.description)
    ]
    assert published.failure is first
    assert published.broker_refused


def test_a_refusal_by_send_leaves_the_producer_usable() -> None:
    published = Published()
    error = MessageSizeTooLargeError("The message is 5000000 bytes when serialized")
    published.add(_row(1), error, from_broker=False)  # type: ignore[arg-type]
    assert [text for _, text in published.refused] == [
        "producer refused: [Error 10] MessageSizeTooLargeError: The message is 5000000 bytes when serialized"
    ]
    assert not published.broker_refused
    assert published.failure is None


def test_a_cancelled_send_becomes_an_exception_the_relay_handles() -> None:
    published = Published()
    published.add(_row(1), asyncio.CancelledError(), from_broker=True)  # type: ignore[arg-type]
    assert isinstance(published.failure, Exception)
    assert published.sent == []


class _Refuses:
    """A producer that must never be asked: the topic name is refused before it is."""

    async def send(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("sent")


@pytest.mark.parametrize("topic", ["bad topic!", "x" * 250, ".", "..", ""])
async def test_a_topic_name_kafka_does_not_allow_is_refused_without_waiting_for_metadata(topic: str) -> None:
    with pytest.raises(InvalidTopicError) as raised:
        await outbox._send(_Refuses(), _row(1, topic))  # type: ignore[arg-type]
    assert outcome(raised.value) is Outcome.REFUSED


@pytest.mark.parametrize("topic", ["fivecogs.inputs.ingest.dlq", "fivecogs.partner.feedback", "a-b_c.9", "x" * 249])
async def test_a_legal_topic_name_is_sent(topic: str) -> None:
    with pytest.raises(AssertionError, match="sent"):
        await outbox._send(_Refuses(), _row(1, topic))  # type: ignore[arg-type]
