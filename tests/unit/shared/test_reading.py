"""Reading a partner record is total: whatever the bytes and headers, the outcome is an event or a BadRecord
with a kind. Properties over arbitrary input (hypothesis), then every documented limit by example."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fivecogs_shared import limits
from fivecogs_shared.contracts import partner
from fivecogs_shared.envelope import Envelope, read_event
from fivecogs_shared.errors import BadRecord
from fivecogs_shared.provinces import TARGET_PROVINCES

REGISTRY = partner.partner_types_of("inputs")
REGISTERED = "th.fivecogs.enterprise.registered.v1"
KINDS = {"malformed", "schema", "unknown_type", "oversized"}
MAX_VALUE = 256 * 1024


@dataclass(frozen=True)
class Record:
    value: bytes | None
    headers: list[tuple[str, bytes]]
    key: bytes | None = b"ent-1"
    topic: str = "fivecogs.inputs.ingest"
    partition: int = 0
    offset: int = 7
    extra: dict[str, Any] = field(default_factory=dict)


def ce(ce_type: str = REGISTERED, **changes: bytes | None) -> list[tuple[str, bytes]]:
    base: dict[str, bytes | None] = {
        "ce_specversion": b"1.0",
        "ce_id": b"evt-1",
        "ce_source": b"partner-a",
        "ce_type": ce_type.encode(),
        "ce_time": datetime.now(UTC).isoformat().encode(),
        "content-type": b"application/json",
    }
    base.update(changes)
    return [(name, value) for name, value in base.items() if value is not None]


def enterprise(**changes: Any) -> dict[str, Any]:
    return {
        "enterprise_id": "ent-1",
        "name": "Ban Khiriwong Dyed Cloth Group",
        "province": "Nakhon Si Thammarat",
        "sector": "processing",
        "members": 12,
        "target_poor_households": 4,
    } | changes


def outcome(record: Record) -> Envelope | BadRecord:
    """The reading; a BadRecord is returned (not raised) once its kind and detail are checked."""
    try:
        return read_event(record, REGISTRY, MAX_VALUE)
    except BadRecord as bad:
        failure = bad
    assert failure.kind in KINDS, failure.kind
    assert failure.detail
    return failure


# --- properties -------------------------------------------------------------------------------------------

header_names = st.one_of(st.sampled_from([n for n, _ in ce()] + ["ce_correlationid", "ce_datacontenttype"]), st.text())
headers = st.lists(st.tuples(header_names, st.binary(max_size=300)), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(value=st.one_of(st.none(), st.binary(max_size=2000)), headers=headers, key=st.none() | st.binary(max_size=50))
def test_arbitrary_bytes_and_headers_never_raise_anything_but_bad_record(value, headers, key) -> None:
    outcome(Record(value, headers, key))


@FAST
@given(body=json_values, extra=headers)
def test_arbitrary_json_under_valid_headers_is_an_event_or_a_bad_record(body, extra) -> None:
    outcome(Record(json.dumps(body, allow_nan=True).encode(), ce() + extra))


@FAST
@given(position=st.integers(min_value=0), junk=st.binary(min_size=1, max_size=8), cut=st.booleans())
def test_a_valid_value_mutated_anywhere_is_an_event_or_a_bad_record(position, junk, cut) -> None:
    value = json.dumps(enterprise()).encode()
    at = position % len(value)
    mutated = value[:at] + (b"" if cut else junk) + value[at + (len(junk) if cut else 0) :]
    outcome(Record(mutated, ce()))


identifiers = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=50
).filter(lambda text: len(text.encode()) <= limits.MAX_ATTRIBUTE_BYTES and text.strip() == text)


@FAST
@given(
    enterprise_id=identifiers,
    name=identifiers,
    province=st.sampled_from(sorted(TARGET_PROVINCES)),
    sector=st.sampled_from(["agriculture", "processing", "community_tourism"]),
    members=st.integers(min_value=4, max_value=10_000),
    event_id=identifiers,
    source=identifiers,
)
def test_valid_events_round_trip(enterprise_id, name, province, sector, members, event_id, source) -> None:
    body = enterprise(enterprise_id=enterprise_id, name=name, province=province, sector=sector, members=members)
    record = Record(
        json.dumps(body).encode(),
        ce(ce_id=event_id.encode(), ce_source=source.encode()),
        key=enterprise_id.encode(),
    )
    event = outcome(record)
    assert isinstance(event, Envelope), event
    assert (event.id, event.source, event.key) == (event_id, source, enterprise_id)
    assert event.data.model_dump() == body


# --- every limit, by example ------------------------------------------------------------------------------

VALID = json.dumps(enterprise()).encode()
SOON = (datetime.now(UTC) + timedelta(hours=2)).isoformat().encode()
HOSTILE: dict[str, tuple[bytes | None, list[tuple[str, bytes]], str]] = {
    "deep nesting": (b'{"name":' + b"[" * 5000 + b"]" * 5000 + b"}", ce(), "malformed"),
    "nesting just over the limit": (
        b'{"name":' + b"[" * limits.MAX_DEPTH + b"]" * limits.MAX_DEPTH + b"}",
        ce(),
        "malformed",
    ),
    "a 5,000-digit integer": (json.dumps(enterprise()).encode().replace(b"12", b"1" * 5000), ce(), "malformed"),
    "NaN": (VALID.replace(b"12", b"NaN"), ce(), "malformed"),
    "Infinity": (VALID.replace(b"12", b"-Infinity"), ce(), "malformed"),
    "1e400": (VALID.replace(b"12", b"1e400"), ce(), "malformed"),
    "a NUL in a string": (VALID.replace(b"Ban", b"B\\u0000n"), ce(), "malformed"),
    "a lone surrogate": (VALID.replace(b"Ban", b"\\ud800"), ce(), "malformed"),
    "not UTF-8": (VALID.replace(b"Ban", b"B\xffn"), ce(), "malformed"),
    "empty value": (b"", ce(), "malformed"),
    "no value at all": (None, ce(), "malformed"),
    "JSON null": (b"null", ce(), "schema"),
    "a top-level array": (b"[" + VALID + b"]", ce(), "schema"),
    "a top-level string": (b'"hello"', ce(), "schema"),
    "NUL in ce_id": (VALID, ce(ce_id=b"evt\x00-1"), "malformed"),
    "a newline in ce_source": (VALID, ce(ce_source=b"partner-a\nfake log line"), "malformed"),
    "ce_id not UTF-8": (VALID, ce(ce_id=b"\xc3\x28"), "malformed"),
    "ce_id too long": (VALID, ce(ce_id=b"x" * 201), "malformed"),
    "a duplicate ce_source": (VALID, [*ce(), ("ce_source", b"partner-b")], "malformed"),
    "a duplicate ce_id": (VALID, [*ce(), ("ce_id", b"evt-2")], "malformed"),
    "a huge header": (VALID, [*ce(), ("x-trace", b"t" * 5000)], "malformed"),
    "many headers": (VALID, ce() + [(f"x-{n}", b"1") for n in range(40)], "malformed"),
    "a long header name": (VALID, [*ce(), ("x" * 100, b"1")], "malformed"),
    "wrong content type": (
        VALID,
        [(n, b"application/xml" if n == "content-type" else v) for n, v in ce()],
        "malformed",
    ),
    "spec version 0.3": (VALID, ce(ce_specversion=b"0.3"), "malformed"),
    "ce_time in year 1": (VALID, ce(ce_time=b"0001-01-01T00:00:00+14:00"), "malformed"),
    "ce_time in year 9999": (VALID, ce(ce_time=b"9999-12-31T23:59:59-14:00"), "malformed"),
    "ce_time without offset": (VALID, ce(ce_time=b"2026-01-01T00:00:00"), "malformed"),
    "a value over the service's limit": (b'{"name":"' + b"x" * MAX_VALUE + b'"}', ce(), "oversized"),
    "unknown type": (VALID, ce("th.fivecogs.harvest.forecast.v1"), "unknown_type"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_every_limit_gives_its_kind(name: str) -> None:
    value, headers, kind = HOSTILE[name]
    bad = outcome(Record(value, headers))
    assert isinstance(bad, BadRecord), f"{name} was accepted"
    assert bad.kind == kind, bad.detail


def test_what_passes_the_limits_is_read() -> None:
    lines = {"enterprise_id": "ent-1", "note": "123456789012345678901234567890 e999 NaN \\u0000 [[[["}
    assert isinstance(outcome(Record(VALID, ce(ce_time=SOON))), Envelope)  # a partner clock a little ahead
    trace = [*ce(), ("x-trace", b"t" * 500), ("x-other", b"")]
    assert isinstance(outcome(Record(VALID, trace)), Envelope)
    # Suspicious-looking text inside strings is only text: the precise scan looks outside strings.
    tricky = enterprise(name=lines["note"])
    assert isinstance(outcome(Record(json.dumps(tricky).encode(), ce())), Envelope)
    escaped_backslash = VALID.replace(b"Ban", b"B\\\\u0000n")  # a backslash, then the text "u0000"
    assert isinstance(outcome(Record(escaped_backslash, ce())), Envelope)
