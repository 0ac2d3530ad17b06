"""Bad twins of good partner records, one per kind the chain must dead-letter.

Each twin fails in exactly one way, and `read` (the model's own intake) confirms which before it is published:
a twin that is not what it claims would make the suite test nothing. Twins carry fresh ids of the run's tag,
except the conflicting duplicate, which reuses its original's id with other bytes and follows it on its key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

from fivecogs_ops.simulate.intake import MAX_VALUE_BYTES, Reading, read
from fivecogs_ops.simulate.records import Sent, with_headers, with_value
from fivecogs_shared.contracts import PARTNER_EVENT_TYPES

# The kinds of issue 4, and the dead-letter kind each must end up as.
KINDS: dict[str, str] = {
    "not_json": "malformed",
    "bad_headers": "malformed",
    "unknown_type": "unknown_type",
    "schema": "schema",
    "oversized": "oversized",
    "conflict": "conflict",
}

# Header breakages, used in turn: each alone makes the record malformed.
BROKEN_HEADERS: tuple[dict[str, bytes | None], ...] = (
    {"ce_specversion": b"0.3"},
    {"ce_time": b"2025-01-08T11:00:00"},  # no offset
    {"content-type": b"text/plain"},
    {"ce_source": None},
)


def make(kind: str, original: Sent, fresh_id: str, turn: int) -> Sent:
    """The `kind` twin of `original`; `turn` picks among the variants of a kind."""
    twin = _MAKERS[kind](original if kind == "conflict" else _renamed(original, fresh_id), turn)
    _check(kind, original, twin)
    return twin


def can_template(sent: Sent) -> bool:
    """Only records the chain would take in (accepted, or refused by a rule) make meaningful twins."""
    return sent.intent != "duplicate" and isinstance(read(sent), Reading)


def _renamed(sent: Sent, fresh_id: str) -> Sent:
    return with_headers(sent, {"ce_id": fresh_id.encode()}, sent.intent, sent.note)


def _not_json(sent: Sent, turn: int) -> Sent:
    value = sent.value[:-7] if turn % 2 == 0 else b"\xff\xfe" + sent.value  # cut short, or not UTF-8
    return with_value(sent, value, "malformed", "poison: the value is not JSON")


def _bad_headers(sent: Sent, turn: int) -> Sent:
    return with_headers(sent, BROKEN_HEADERS[turn % len(BROKEN_HEADERS)], "malformed", "poison: broken headers")


def _unknown_type(sent: Sent, turn: int) -> Sent:
    cog = PARTNER_EVENT_TYPES[sent.ce_type].cog
    elsewhere = next(t for t, kind in PARTNER_EVENT_TYPES.items() if kind.cog != cog)  # valid, but not here
    ce_type = "th.fivecogs.harvest.forecast.v1" if turn % 2 == 0 else elsewhere
    return with_headers(sent, {"ce_type": ce_type.encode()}, "unknown_type", "poison: a type not accepted here")


def _schema(sent: Sent, turn: int) -> Sent:
    if turn % 2 == 0:
        data = sent.data()
        data.pop(PARTNER_EVENT_TYPES[sent.ce_type].key_field)
        return with_value(sent, json.dumps(data).encode(), "schema", "poison: the key field is missing")
    return with_value(sent, sent.value, "schema", "poison: the Kafka key is not the key field", b"not-the-key")


def _oversized(sent: Sent, turn: int) -> Sent:
    data = {**sent.data(), "padding": "x" * MAX_VALUE_BYTES}
    return with_value(sent, json.dumps(data).encode(), "oversized", "poison: over 256 KiB")


def _conflict(sent: Sent, turn: int) -> Sent:
    """The same id and data, serialised differently: other bytes under an id already taken."""
    value = json.dumps(sent.data(), ensure_ascii=False, indent=1).encode()
    return replace(sent, value=value, intent="conflict", note="poison: an event id reused for other bytes")


_MAKERS: dict[str, Callable[[Sent, int], Sent]] = {
    "not_json": _not_json,
    "bad_headers": _bad_headers,
    "unknown_type": _unknown_type,
    "schema": _schema,
    "oversized": _oversized,
    "conflict": _conflict,
}


def _check(kind: str, original: Sent, twin: Sent) -> None:
    reading = read(twin)
    if kind == "conflict":
        first = read(original)
        assert isinstance(reading, Reading), "a conflict must read as a valid event"
        assert isinstance(first, Reading), "a conflict needs a valid original"
        assert reading.event_id == first.event_id, "a conflict reuses its original's id"
        assert reading.fingerprint != first.fingerprint, "a conflict has other bytes"
        return
    assert reading == KINDS[kind], f"a {kind} twin of {original.event_id} reads as {reading!r}"
