"""Fetching that no record can stop: a record the Kafka client itself cannot decode becomes a dead letter.

aiokafka decodes header names as strict UTF-8 while it iterates a fetched batch. A partner whose client writes
other bytes there (librdkafka takes any bytes) makes `getmany` raise UnicodeDecodeError, which FastStream's
consume loop does not catch: the subscriber would die silently, every partition still assigned to it. The guard
rewinds every partition to its committed offset (the failed fetch may have taken records of other partitions
that it never returned), finds the record by fetching its partition one record at a time, hands the good
records before it on as usual, then that record as an `UndecodableRecord` (dead-lettered as `malformed`), and
steps past it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

log = structlog.get_logger()

GetMsg = Callable[[AIOKafkaConsumer], Coroutine[Any, Any, tuple[Any, ...]]]
PROBE_TIMEOUT_MS = 1000  # long enough for a re-fetch of the partition after the failed iteration
PROBE_PARTITION_LIMIT = 100  # records taken from one partition while stepping around a bad record
PROBE_BUDGET = 2000  # records taken in all, so that the batch handed on stays a batch


@dataclass(frozen=True)
class UndecodableRecord:
    """Where an unreadable record sits, and why; it carries none of its bytes (the client could not read them)."""

    topic: str
    partition: int
    offset: int
    problem: str
    key: bytes | None = None
    value: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp: int = -1  # FastStream's batch parser names messages by offset and timestamp


def waiting_only_for_records(max_records: int, timeout_ms: int) -> GetMsg:
    """A batch subscriber's `get_msg` without FastStream's sleep after an empty fetch: `getmany` has already waited
    up to `timeout_ms` for records, and one that arrived during a further sleep would wait that long again (about
    100 ms a hop on average with the default 200 ms, measured in the chain bench)."""

    async def get_msg(consumer: AIOKafkaConsumer) -> tuple[Any, ...]:
        fetched = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return tuple(itertools.chain.from_iterable(fetched.values()))

    return get_msg


def guarded(get_msg: GetMsg) -> GetMsg:
    """Wrap a FastStream batch subscriber's `get_msg`: same batches, except around an undecodable record."""

    async def get_msg_guarded(consumer: AIOKafkaConsumer) -> tuple[Any, ...]:
        try:
            return await get_msg(consumer)
        except KafkaError:
            raise
        except (UnicodeDecodeError, ValueError, TypeError) as error:
            return await _around_undecodable(consumer, error)

    return get_msg_guarded


async def _around_undecodable(consumer: AIOKafkaConsumer, error: Exception) -> tuple[Any, ...]:
    await _rewind_to_committed(consumer)
    assigned = sorted(consumer.assignment())
    # Only partitions with records left: an empty one would cost a whole probe timeout (a consumer of every
    # partner's topics holds many, mostly quiet).
    ends = await consumer.end_offsets(assigned)
    # Every partition's good records up to its next undecodable one, in one go: stopping at the first partition
    # that has records would take a rewind per partition to reach the bad one among hundreds.
    found: list[Any] = []
    for tp in assigned:
        if len(found) >= PROBE_BUDGET:
            break
        if await consumer.position(tp) < ends[tp]:
            found += await _probe(consumer, tp, limit=min(PROBE_PARTITION_LIMIT, PROBE_BUDGET - len(found)))
    if found:
        return tuple(found)
    log.warning("a fetch failed to decode, and no partition fails alone; fetching again", error=repr(error))
    return ()


async def _rewind_to_committed(consumer: AIOKafkaConsumer) -> None:
    """aiokafka's failed `getmany` may already have taken other partitions' records (their positions moved on)
    when the bad one raised: those records were never returned. Every partition goes back to its committed offset
    (batches are committed before the next fetch, so nothing is lost; the inbox absorbs what is read again)."""
    assigned = list(consumer.assignment())
    # One OffsetFetch for them all (`consumer.committed` asks per partition: minutes over hundreds of partitions).
    committed = await consumer._coordinator.fetch_committed_offsets(assigned)
    never = []
    for tp in assigned:
        found = committed.get(tp)
        if found is None or found.offset < 0:
            never.append(tp)
        else:
            consumer.seek(tp, found.offset)
    if never:
        await consumer.seek_to_beginning(*never)


async def _probe(consumer: AIOKafkaConsumer, tp: TopicPartition, limit: int = 500) -> tuple[Any, ...]:
    """The partition's next records one by one: the good ones before an undecodable record, or that record."""
    good: list[ConsumerRecord] = []
    while len(good) < limit:
        try:
            fetched = await consumer.getmany(tp, timeout_ms=PROBE_TIMEOUT_MS, max_records=1)
        except KafkaError:
            raise
        except (UnicodeDecodeError, ValueError, TypeError) as error:
            if good:
                return tuple(good)  # the next fetch fails at the bad record itself
            offset = await consumer.position(tp)
            consumer.seek(tp, offset + 1)  # committed only with the dead letter's batch
            problem = f"the Kafka client cannot decode the record ({type(error).__name__}: {error})"[:500]
            log.warning("undecodable record; dead-lettering it", topic=tp.topic, partition=tp.partition, offset=offset)
            return (UndecodableRecord(tp.topic, tp.partition, offset, problem),)
        if not fetched:
            break
        good.extend(fetched[tp])
    return tuple(good)
