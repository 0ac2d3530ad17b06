"""How fivecogs takes a partner record in, per docs/partners.md §2-§3, written again for the model: the
record is either an event of the topic's cog or a dead letter of one kind.

The limits of §2 ("Limits") are checked here in the model's own way, from the documentation alone: the headers
by counting, the value by parsing it with the standard library and looking at what came out. The services scan
the raw bytes instead; two readings that agree are the point.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from fivecogs_ops.simulate.records import Headers, Sent
from fivecogs_shared.contracts import PARTNER_EVENT_TYPES

MAX_VALUE_BYTES = 256 * 1024
REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time")


def cog_of(topic: str) -> str:
    """The cog of an ingest topic `fivecogs.<cog>.ingest.<partner>`."""
    return topic.split(".")[1]


# docs/partners.md §2, "Limits": every one of them makes a record `malformed`.
MAX_HEADERS, MAX_NAME_BYTES, MAX_HEADER_BYTES, MAX_ALL_HEADER_BYTES = 32, 64, 1024, 8 * 1024
ATTRIBUTES = ("ce_id", "ce_source", "ce_type", "ce_correlationid")  # UTF-8, at most 200 bytes, printable
MAX_ATTRIBUTE_BYTES = 200
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
AHEAD = timedelta(days=1)  # how far past the moment of reading a ce_time may be
MAX_DEPTH, MAX_NUMBER_CHARS = 16, 40


@dataclass(frozen=True)
class Reading:
    cog: str
    ce_type: str
    source: str
    event_id: str
    time: datetime
    data: BaseModel
    fingerprint: bytes  # what "the same event again" means: same type and byte-identical value


def read(sent: Sent) -> Reading | str:
    """The event in the record, or the dead-letter kind that explains why there is none."""
    problem = _header_problem(sent)
    if problem:
        return problem
    cog = cog_of(sent.topic)
    kind = PARTNER_EVENT_TYPES.get(sent.ce_type)
    if kind is None or kind.cog != cog:
        return "unknown_type"
    if len(sent.value) > MAX_VALUE_BYTES:
        return "oversized"
    if not _json_within_limits(sent.value):
        return "malformed"
    try:
        data = kind.model.model_validate_json(sent.value)  # null, an array, a number: not an object, `schema`
    except ValidationError:
        return "schema"
    if sent.key != str(getattr(data, kind.key_field)).encode():
        return "schema"
    return Reading(
        cog=cog,
        ce_type=sent.ce_type,
        source=sent.source,
        event_id=sent.event_id,
        time=_moment(sent.header("ce_time") or ""),
        data=data,
        fingerprint=hashlib.sha256(sent.ce_type.encode() + b"\0" + sent.value).digest(),
    )


def _header_problem(sent: Sent) -> str | None:
    # Sizes and repeats first: past them, looking a header up by its name is unambiguous.
    if not _headers_within_limits(sent.headers) or _repeated(sent.headers):
        return "malformed"
    if any(not sent.header(name) for name in REQUIRED):
        return "malformed"
    if not all(_attribute_ok(value) for name, value in sent.headers if name in ATTRIBUTES):
        return "malformed"
    if sent.header("ce_specversion") != "1.0":
        return "malformed"
    content_type = sent.header("content-type") or sent.header("ce_datacontenttype")
    if content_type and content_type.split(";")[0].strip() != "application/json":
        return "malformed"
    if not _time_ok(sent.header("ce_time") or ""):
        return "malformed"
    return None


def _headers_within_limits(headers: Headers) -> bool:
    sizes = [(len(name.encode("utf-8", "surrogatepass")), len(value)) for name, value in headers]
    return (
        len(sizes) <= MAX_HEADERS
        and all(name <= MAX_NAME_BYTES and value <= MAX_HEADER_BYTES for name, value in sizes)
        and sum(name + value for name, value in sizes) <= MAX_ALL_HEADER_BYTES
    )


def _repeated(headers: Headers) -> bool:
    """Any `ce_*` header or content-type twice: the docs say fivecogs never guesses which one was meant."""
    counts = Counter(name for name, _ in headers if name.startswith("ce_") or name == "content-type")
    return any(count > 1 for count in counts.values())


def _attribute_ok(raw: bytes) -> bool:
    if len(raw) > MAX_ATTRIBUTE_BYTES:
        return False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in text)  # C0, DEL, C1


def _time_ok(text: str) -> bool:
    try:
        moment = _moment(text).astimezone(UTC)
    except ValueError:
        return False
    except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset: out of range either way
        return False
    return EARLIEST <= moment <= datetime.now(UTC) + AHEAD


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("RFC 3339 needs an offset")
    return moment


class _Object(tuple[tuple[str, Any], ...]):
    """An object's (name, value) pairs as written: a repeated name keeps every copy, so a NUL in the copy a
    parser would drop still counts."""


class _OutOfLimits(ValueError):
    pass


def _json_within_limits(value: bytes) -> bool:
    """Not empty, UTF-8, JSON, and within §2's nesting, number and string limits."""
    try:
        text = value.decode("utf-8")  # strictly: json.loads(bytes) would also take UTF-16 or encoded surrogates
        parsed = json.loads(
            text,
            object_pairs_hook=_Object,
            parse_int=_integer,
            parse_float=_float,
            parse_constant=_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested far beyond the limit
        return False
    return _nested_within_limits(parsed)


def _integer(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _OutOfLimits(f"a {len(literal)}-character number")
    return int(literal)


def _float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS or math.isinf(float(literal)):  # 1e400: beyond the float range
        raise _OutOfLimits(f"the number {literal[:50]}")
    return float(literal)


def _constant(literal: str) -> float:
    raise _OutOfLimits(f"{literal} is not a JSON number")  # Python's json takes NaN and Infinity; RFC 8259 does not


def _nested_within_limits(parsed: Any) -> bool:
    """No array or object deeper than MAX_DEPTH, no string (name or value) with NUL or a lone surrogate."""
    pending = [(parsed, 1)]
    while pending:  # a loop, not recursion: the depth is what is being checked
        item, depth = pending.pop()
        if isinstance(item, str) and not _string_ok(item):
            return False
        if isinstance(item, _Object | list):
            if depth > MAX_DEPTH:
                return False
            parts = [part for pair in item for part in pair] if isinstance(item, _Object) else item
            pending.extend((part, depth + 1) for part in parts)
    return True


def _string_ok(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")  # json joins every escaped surrogate pair, so what is left is a lone surrogate
    except UnicodeEncodeError:
        return False
    return True
