"""A dead-letter copy always fits its DLQ topic: whole when it can, else a slice, its size and its hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, cast

from fivecogs_shared.consumer import DLQ_SLICE_BYTES, BatchProcessor, Sources
from fivecogs_shared.contracts.topics import DLQ_MAX_RECORD_BYTES, record_bytes
from fivecogs_shared.errors import BadRecord
from fivecogs_shared.metrics import ServiceMetrics
from fivecogs_shared.uow import UnitOfWork

TOPIC = "fivecogs.inputs.ingest.coop-1"


@dataclass(frozen=True)
class Record:
    value: bytes
    headers: list[tuple[str, bytes]]
    key: bytes = b"ent-1"
    topic: str = TOPIC
    partition: int = 1
    offset: int = 42


def _copy(record: Record) -> Any:
    sources = Sources("inputs", {}, {})
    processor = BatchProcessor("inputs", cast(Any, None), sources, {}, ServiceMetrics(), "fivecogs-inputs")
    uow = UnitOfWork(conn=cast(Any, None), cog="inputs")
    processor._dead_letter(uow, record, BadRecord("oversized", "too big"), sources[TOPIC])
    [copy] = [r for r in uow.outgoing if r.topic.endswith(".dlq")]
    return copy


def test_a_record_that_fits_is_copied_byte_for_byte() -> None:
    record = Record(b"x" * (1024 * 1024), [("ce_id", b"evt-1"), ("x-trace", b"t")])
    copy = _copy(record)
    assert copy.value == record.value
    assert copy.headers[:2] == record.headers
    assert dict(copy.headers)["fivecogs_error_detail"] == b"too big"


def test_a_record_too_large_to_copy_is_parked_as_a_slice_with_its_size_and_hash() -> None:
    value = b"y" * (DLQ_MAX_RECORD_BYTES + 1)
    record = Record(value, [("ce_id", b"evt-1"), ("ce_source", b"partner-a"), ("x-trace", b"t")])
    copy = _copy(record)
    headers = dict(copy.headers)
    assert copy.value == value[:DLQ_SLICE_BYTES]
    assert copy.key == record.key
    assert headers["ce_id"] == b"evt-1"
    assert "x-trace" not in headers  # only the CloudEvents attributes are kept
    assert headers["fivecogs_value_bytes"] == str(len(value)).encode()
    assert headers["fivecogs_value_sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert headers["fivecogs_error_detail"].startswith(b"copy truncated")
    assert headers["fivecogs_error_kind"] == b"oversized"
    assert record_bytes(copy.key, copy.value, copy.headers) <= DLQ_MAX_RECORD_BYTES
