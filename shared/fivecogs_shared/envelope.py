"""CloudEvents 1.0 in Kafka binary content mode: attributes in `ce_*` headers, the data as the record value.

`read_event` turns a consumer record into an `Envelope` or raises `BadRecord` with the kind the partner is told
(malformed, unknown_type, oversized, schema); `event_headers` writes the headers for events we publish.
"""

from __future__ import annotations

import builtins
import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from fivecogs_shared import limits
from fivecogs_shared.errors import BadRecord

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
# CloudEvents extension attribute: the id of the partner event that started a chain of internal events.
CORRELATION_HEADER = "ce_correlationid"
REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time")

Headers = Sequence[tuple[str, bytes]]
M = TypeVar("M", bound=BaseModel)


class EventType(Protocol):
    @property
    def ce_type(self) -> str: ...
    @property
    def key_field(self) -> str: ...
    @property
    def model(self) -> type[BaseModel]: ...
    @property
    def handled_as(self) -> str | None: ...
    @property
    def upcast(self) -> Callable[[BaseModel], BaseModel] | None: ...


class RecordLike(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers: ...


@dataclass(frozen=True)
class Envelope:
    id: str
    source: str
    type: str
    time: datetime
    key: str
    data: BaseModel
    digest: bytes
    correlation_id: str
    # The version whose handler applies it: an older version's data is upcast to that version's model.
    handled_as: str = ""

    def __post_init__(self) -> None:
        if not self.handled_as:
            object.__setattr__(self, "handled_as", self.type)

    def data_as(self, model: builtins.type[M]) -> M:
        if not isinstance(self.data, model):
            raise TypeError(f"{self.type} carries {type(self.data).__name__}, not {model.__name__}")
        return self.data


def header_map(headers: Headers) -> dict[str, bytes]:
    return dict(headers)


def identify(record: RecordLike) -> tuple[str, str, str]:
    """(source, id, type) as far as the headers tell, for feedback on records we could not read whole: each
    cut to the header limit, so a hostile header cannot make the answer (or its key) huge."""
    headers = header_map(record.headers or ())
    cut = limits.MAX_HEADER_VALUE_BYTES
    source, event_id, ce_type = (_text(headers.get(name))[:cut] for name in ("ce_source", "ce_id", "ce_type"))
    return source, event_id, ce_type


def correlation_of(record: RecordLike) -> str:
    """The chain's id as far as the headers tell (ce_correlationid, else ce_id), cut like `identify`'s."""
    headers = header_map(record.headers or ())
    chain = headers.get(CORRELATION_HEADER) or headers.get("ce_id")
    return _text(chain)[: limits.MAX_HEADER_VALUE_BYTES]


def read_event(record: RecordLike, registry: Mapping[str, EventType], max_value_bytes: int) -> Envelope:
    """The event in the record, or `BadRecord`: whatever the bytes and headers, nothing else is raised."""
    try:
        return _read(record, registry, max_value_bytes)
    except BadRecord:
        raise
    except Exception as error:  # a limit we did not foresee: still this record's dead letter, never the batch's
        raise BadRecord("malformed", f"the record cannot be read ({type(error).__name__})") from error


def _read(record: RecordLike, registry: Mapping[str, EventType], max_value_bytes: int) -> Envelope:
    headers = limits.checked_headers(record.headers or ())
    attributes, moment = _attributes(headers)
    ce_type = attributes["ce_type"]
    event_type = registry.get(ce_type)
    if event_type is None:
        raise BadRecord("unknown_type", f"ce_type {ce_type!r} is not accepted on {record.topic}")
    value = record.value or b""
    if len(value) > max_value_bytes:
        raise BadRecord("oversized", f"value is {len(value)} bytes; at most {max_value_bytes} are accepted")
    limits.check_value(value)
    data = _parse(event_type.model, value)  # the one parse of the value
    key = (record.key or b"").decode("utf-8", errors="replace")
    expected_key = str(getattr(data, event_type.key_field))
    if key != expected_key:
        raise BadRecord(
            "schema", f"Kafka key must be the {event_type.key_field} {expected_key[:100]!r}, got {key[:100]!r}"
        )
    if event_type.upcast is not None:
        data = event_type.upcast(data)  # the one place where older versions become the current one
    return Envelope(
        id=attributes["ce_id"],
        source=attributes["ce_source"],
        type=ce_type,
        time=moment,
        key=key,
        data=data,
        digest=hashlib.sha256(ce_type.encode() + b"\0" + value).digest(),
        correlation_id=attributes[CORRELATION_HEADER] or attributes["ce_id"],
        handled_as=event_type.handled_as or ce_type,
    )


def _attributes(headers: dict[str, bytes]) -> tuple[dict[str, str], datetime]:
    """The CloudEvents attributes, each checked (present, printable UTF-8, within its limit), and the time."""
    found = {name: limits.attribute(headers, name) for name in (*REQUIRED_HEADERS, CORRELATION_HEADER)}
    missing = [name for name in REQUIRED_HEADERS if not found[name]]
    if missing:
        raise BadRecord("malformed", f"missing CloudEvents headers: {', '.join(missing)}")
    if found["ce_specversion"] != SPEC_VERSION:
        raise BadRecord("malformed", f"ce_specversion must be {SPEC_VERSION!r}")
    content_type = _text(headers.get("content-type") or headers.get("ce_datacontenttype"))  # a header's limits
    if content_type and content_type.split(";")[0].strip() != CONTENT_TYPE:
        raise BadRecord("malformed", f"content-type must be {CONTENT_TYPE}, got {content_type[:100]!r}")
    return found, limits.event_time(found["ce_time"], datetime.now(UTC))


def _parse(model: type[BaseModel], value: bytes) -> BaseModel:
    try:
        return model.model_validate_json(value)
    except ValidationError as error:
        if any(item["type"] == "json_invalid" for item in error.errors()):
            raise BadRecord("malformed", f"value is not JSON: {_describe(error)}") from None
        raise BadRecord("schema", _describe(error)) from None


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", errors="replace") if raw else ""


def _describe(error: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in item['loc']) or '(data)'}: {item['msg']}" for item in error.errors()]
    return "; ".join(parts)[:1000]


def event_headers(
    *,
    ce_type: str,
    source: str,
    correlation_id: str,
    event_id: str | None = None,
    time: datetime | None = None,
) -> list[tuple[str, bytes]]:
    moment = time or datetime.now(UTC)
    return [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", (event_id or str(uuid.uuid4())).encode()),
        ("ce_source", source.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_time", moment.isoformat().encode()),
        ("content-type", CONTENT_TYPE.encode()),
        (CORRELATION_HEADER, correlation_id.encode()),
    ]


def dump(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


def as_any(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
