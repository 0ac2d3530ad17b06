"""The limits a partner record must keep before fivecogs parses it (docs/partners.md §2, "Limits").

Every check here is bounded by the record's size and never raises anything but `BadRecord`: a hostile record
costs one dead letter, never a partition. The value is parsed once, by pydantic; what its parser would let
through (deep nesting up to its own limit, NaN, NUL characters, huge numbers) is caught by a scan of the raw
bytes first, and that scan is a few C-speed searches unless a cheap trigger says the record is suspicious.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from fivecogs_shared.errors import BadRecord

MAX_HEADERS = 32
MAX_HEADER_NAME_BYTES = 64
MAX_HEADER_VALUE_BYTES = 1024
MAX_HEADERS_BYTES = 8 * 1024  # names and values together
MAX_ATTRIBUTE_BYTES = 200  # ce_id, ce_source, ce_type, ce_correlationid
MAX_DEPTH = 16  # the contract's deepest body (an order's lines) is 3 levels
MAX_NUMBER_CHARS = 40  # 10^15 THB to the satang is 18; a count fits in 10
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(days=1)  # how far in the future a ce_time may be


def _single(name: str) -> bool:
    """CloudEvents attributes and the content type appear once: a second copy is refused, never "last wins"."""
    return name.startswith("ce_") or name == "content-type"


# C0 and C1 controls and DEL: they have no place in an identifier and would corrupt logs or the inbox.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Triggers for the precise value scan: cheap searches that every well-formed event passes.
_SUSPICIOUS = re.compile(rb"[\d.eE+-]{%d}|NaN|Infinity|\\u0000|[eE][+-]?\d{3}" % (MAX_NUMBER_CHARS + 1))
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_NUMBER = re.compile(rb"-?\d[\d.eE+-]*")


def checked_headers(headers: Sequence[tuple[str, bytes]]) -> dict[str, bytes]:
    """The headers by name, once their count, sizes and single attributes are within the limits."""
    if len(headers) > MAX_HEADERS:
        raise BadRecord("malformed", f"{len(headers)} headers; at most {MAX_HEADERS} are accepted")
    total = 0
    for name, value in headers:
        name_bytes = len(name.encode("utf-8", "surrogatepass"))
        if name_bytes > MAX_HEADER_NAME_BYTES or len(value or b"") > MAX_HEADER_VALUE_BYTES:
            raise BadRecord(
                "malformed",
                f"header {_shown(name)} is over {MAX_HEADER_NAME_BYTES} bytes of name "
                f"or {MAX_HEADER_VALUE_BYTES} bytes of value",
            )
        total += name_bytes + len(value or b"")
    if total > MAX_HEADERS_BYTES:
        raise BadRecord("malformed", f"headers total {total} bytes; at most {MAX_HEADERS_BYTES} are accepted")
    counts = Counter(name for name, _ in headers)
    repeated = sorted(name for name, count in counts.items() if count > 1 and _single(name))
    if repeated:
        raise BadRecord("malformed", f"header {repeated[0]} appears {counts[repeated[0]]} times; once is allowed")
    return {name: value or b"" for name, value in headers}


def attribute(headers: dict[str, bytes], name: str, max_bytes: int = MAX_ATTRIBUTE_BYTES) -> str:
    """A ce_* attribute as text: UTF-8, printable, at most `max_bytes`; empty when absent."""
    raw = headers.get(name, b"")
    if len(raw) > max_bytes:
        raise BadRecord("malformed", f"{name} is longer than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRecord("malformed", f"{name} is not UTF-8 (byte {error.start})") from None
    if _CONTROL.search(text):
        raise BadRecord("malformed", f"{name} contains a control character")
    return text


def event_time(text: str, now: datetime) -> datetime:
    """ce_time: RFC 3339 with an offset, between 2000 and a day from now."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise BadRecord("malformed", f"ce_time is not an RFC 3339 timestamp: {error}") from None
    if moment.tzinfo is None:
        raise BadRecord("malformed", "ce_time is not an RFC 3339 timestamp: a time zone offset is required")
    try:
        in_range = EARLIEST_TIME <= moment <= now + CLOCK_SKEW
    except OverflowError:  # an offset that pushes year 1 or 9999 out of range
        in_range = False
    if not in_range:
        raise BadRecord("malformed", f"ce_time {text!r} is before 2000 or more than a day ahead")
    return moment


def check_value(value: bytes) -> None:
    """Nesting depth, number size, NaN/Infinity and NUL characters, from the raw JSON text."""
    depth_possible = value.count(b"[") + value.count(b"{") > MAX_DEPTH
    if not depth_possible and not _SUSPICIOUS.search(value):
        return
    if _NUL_ESCAPE.search(value):
        raise BadRecord("malformed", "a string contains a NUL character (\\u0000)")
    outside = _STRING.sub(b'""', value)  # what is left is structure, numbers and literals
    if depth_possible and _depth(outside) > MAX_DEPTH:
        raise BadRecord("malformed", f"the value is nested deeper than {MAX_DEPTH} levels")
    if b"NaN" in outside or b"Infinity" in outside:
        raise BadRecord("malformed", "NaN and Infinity are not JSON numbers")
    for number in _NUMBER.finditer(outside):
        literal = number.group()
        if len(literal) > MAX_NUMBER_CHARS or _overflows(literal):
            raise BadRecord("malformed", f"a number is longer than {MAX_NUMBER_CHARS} characters or out of range")


def _depth(structure: bytes) -> int:
    deepest = level = 0
    for byte in structure.translate(None, _NOT_BRACKETS):
        level += 1 if byte in b"[{" else -1
        deepest = max(deepest, level)
    return deepest


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _overflows(literal: bytes) -> bool:
    try:
        return literal.lower().count(b"e") == 1 and abs(float(literal)) == float("inf")
    except ValueError:  # not a number after all; the parser will say so
        return False


def _shown(name: str) -> str:
    return repr(name[:40] + ("…" if len(name) > 40 else ""))
