"""Bad twins of good partner records, one per kind the chain must dead-letter.

Each twin fails in exactly one way, and `read` (the model's own intake) confirms which before it is published:
a twin that is not what it claims would make the suite test nothing. Twins carry fresh ids of the run's tag,
except the conflicting duplicate, which reuses its original's id with other bytes and follows it on its key.

A kind has variants, used in turn. The hostile ones probe docs/partners.md §2's limits: each adds one thing a
careless or malicious producer could send to an otherwise good record, and stays small (a few KiB at most).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from fivecogs_ops.simulate.intake import MAX_VALUE_BYTES, Reading, read
from fivecogs_ops.simulate.records import Headers, Sent, with_headers, with_value
from fivecogs_shared.contracts import PARTNER_EVENT_TYPES

# The kinds of issue 4 and issue 10, and the dead-letter kind each must end up as.
KINDS: dict[str, str] = {
    "not_json": "malformed",
    "bad_headers": "malformed",
    "unknown_type": "unknown_type",
    "schema": "schema",
    "oversized": "oversized",
    "conflict": "conflict",
    "hostile_value": "malformed",
    "hostile_headers": "malformed",
    "not_an_object": "schema",
}

# Header breakages, used in turn: each alone makes the record malformed.
BROKEN_HEADERS: tuple[dict[str, bytes | None], ...] = (
    {"ce_specversion": b"0.3"},
    {"ce_time": b"2025-01-08T11:00:00"},  # no offset
    {"content-type": b"text/plain"},
    {"ce_source": None},
)

# JSON texts beyond §2's limits (or not UTF-8), each written into the record as the value of one more field.
# Were a limit missed, the extra field would make the record `schema`, not `malformed`: the two are told apart.
HOSTILE_FIELDS: tuple[tuple[str, bytes], ...] = (
    ("nested 40 levels deep", b"[" * 40 + b"]" * 40),
    ("a 5,000-digit integer", b"1" + b"0" * 4999),
    ("NaN", b"NaN"),
    ("-Infinity", b"-Infinity"),
    ("1e400, beyond the float range", b"1e400"),
    ("a NUL character in a string", b'"before\\u0000after"'),
    ("a lone surrogate", b'"\\ud800"'),
    ("invalid UTF-8 inside a string", b'"caf\xc3("'),
    ("a surrogate encoded in UTF-8 (CESU-8)", b'"\xed\xa0\x80"'),
)

# Values that are JSON but not an object: the schema refuses them.
NOT_OBJECTS: tuple[bytes, ...] = (b"null", b"42", b'"a string"')

Variant = Callable[[Sent], Sent]


def make(kind: str, original: Sent, fresh_id: str, turn: int) -> Sent:
    """The `kind` twin of `original`; `turn` picks among the variants of a kind."""
    variants = VARIANTS[kind]
    twin = variants[turn % len(variants)](original if kind == "conflict" else _renamed(original, fresh_id))
    _check(kind, original, twin)
    return twin


def can_template(sent: Sent) -> bool:
    """Only records the chain would take in (accepted, or refused by a rule) make meaningful twins."""
    return sent.intent != "duplicate" and isinstance(read(sent), Reading)


def _renamed(sent: Sent, fresh_id: str) -> Sent:
    return with_headers(sent, {"ce_id": fresh_id.encode()}, sent.intent, sent.note)


def _cut_short(sent: Sent) -> Sent:
    return with_value(sent, sent.value[:-7], "malformed", "poison: the value is not JSON")


def _not_utf8(sent: Sent) -> Sent:
    return with_value(sent, b"\xff\xfe" + sent.value, "malformed", "poison: the value is not JSON")


def _broken(changes: dict[str, bytes | None], sent: Sent) -> Sent:
    return with_headers(sent, changes, "malformed", "poison: broken headers")


def _type_unheard_of(sent: Sent) -> Sent:
    return _typed(sent, "th.fivecogs.harvest.forecast.v1")


def _type_of_elsewhere(sent: Sent) -> Sent:
    cog = PARTNER_EVENT_TYPES[sent.ce_type].cog
    return _typed(sent, next(t for t, kind in PARTNER_EVENT_TYPES.items() if kind.cog != cog))  # valid, not here


def _typed(sent: Sent, ce_type: str) -> Sent:
    return with_headers(sent, {"ce_type": ce_type.encode()}, "unknown_type", "poison: a type not accepted here")


def _no_key_field(sent: Sent) -> Sent:
    data = sent.data()
    data.pop(PARTNER_EVENT_TYPES[sent.ce_type].key_field)
    return with_value(sent, json.dumps(data).encode(), "schema", "poison: the key field is missing")


def _wrong_key(sent: Sent) -> Sent:
    return with_value(sent, sent.value, "schema", "poison: the Kafka key is not the key field", b"not-the-key")


def _oversized(sent: Sent) -> Sent:
    data = {**sent.data(), "padding": "x" * MAX_VALUE_BYTES}
    return with_value(sent, json.dumps(data).encode(), "oversized", "poison: over 256 KiB")


def _conflict(sent: Sent) -> Sent:
    """The same id and data, serialised differently: other bytes under an id already taken."""
    value = json.dumps(sent.data(), ensure_ascii=False, indent=1).encode()
    return replace(sent, value=value, intent="conflict", note="poison: an event id reused for other bytes")


def _hostile_field(what: str, raw: bytes, sent: Sent) -> Sent:
    assert sent.value.endswith(b"}"), "a good record's value is a JSON object"
    value = sent.value[:-1] + b', "note": ' + raw + b"}"  # written by hand: json.dumps cannot write these
    return with_value(sent, value, "malformed", f"poison: hostile value, {what}")


def _empty(sent: Sent) -> Sent:
    return with_value(sent, b"", "malformed", "poison: hostile value, empty")


def _not_an_object(value: bytes, sent: Sent) -> Sent:
    return with_value(sent, value, "schema", "poison: the value is JSON but not an object")


def _in_an_array(sent: Sent) -> Sent:
    return _not_an_object(b"[" + sent.value + b"]", sent)


HeaderEdit = Callable[[Sent], Headers]


def _hostile_headers(what: str, edit: HeaderEdit, sent: Sent) -> Sent:
    return replace(sent, headers=edit(sent), intent="malformed", note=f"poison: hostile headers, {what}")


def _suffixed(name: str, suffix: bytes) -> HeaderEdit:
    """The attribute itself carries the bytes, as a hostile producer's would; the answer then names them."""
    return lambda sent: tuple((n, value + suffix if n == name else value) for n, value in sent.headers)


def _set(name: str, value: bytes) -> HeaderEdit:
    return lambda sent: with_headers(sent, {name: value}, sent.intent, sent.note).headers


def _repeated(name: str) -> HeaderEdit:
    """The header once more with the same value: still a repeat the contract refuses, and as the copies agree,
    the id and partner that the answer names are certain."""
    return lambda sent: sent.headers + tuple((n, value) for n, value in sent.headers if n == name)


def _added(*extra: tuple[str, bytes]) -> HeaderEdit:
    return lambda sent: sent.headers + extra


def _up_to(count: int) -> HeaderEdit:
    return lambda sent: sent.headers + _filler(count - len(sent.headers), 1)


def _filler(count: int, size: int) -> Headers:
    return tuple((f"x-filler-{n:02d}", b"f" * size) for n in range(count))


# A size limit is broken by a header of its own, never by ce_id or ce_source: the feedback cuts those to the
# limit, and the answer's id would no longer be the one the model expects.
HOSTILE_HEADERS: tuple[tuple[str, HeaderEdit], ...] = (
    ("NUL in ce_id", _suffixed("ce_id", b"\x00")),
    ("a newline in ce_source", _suffixed("ce_source", b"\nx-injected: 1")),
    ("a tab in ce_type", _suffixed("ce_type", b"\t")),
    ("a newline in ce_correlationid", _set("ce_correlationid", b"corr\nx")),
    ("ce_time in year 9999", _set("ce_time", b"9999-12-31T23:59:59+07:00")),
    ("ce_time in 1999", _set("ce_time", b"1999-12-31T23:59:59+07:00")),
    ("ce_id twice", _repeated("ce_id")),
    ("ce_source twice", _repeated("ce_source")),
    ("a 2,000-byte header", _added(("x-trace", b"t" * 2000))),
    ("40 headers", _up_to(40)),
    ("9 KiB of headers in all", _added(*_filler(9, 1000))),
    ("a 70-byte header name", _added(("x-" + "n" * 68, b"1"))),
)


VARIANTS: dict[str, tuple[Variant, ...]] = {
    "not_json": (_cut_short, _not_utf8),
    "bad_headers": tuple(partial(_broken, changes) for changes in BROKEN_HEADERS),
    "unknown_type": (_type_unheard_of, _type_of_elsewhere),
    "schema": (_no_key_field, _wrong_key),
    "oversized": (_oversized,),
    "conflict": (_conflict,),
    "hostile_value": (*(partial(_hostile_field, what, raw) for what, raw in HOSTILE_FIELDS), _empty),
    "hostile_headers": tuple(partial(_hostile_headers, what, edit) for what, edit in HOSTILE_HEADERS),
    "not_an_object": (*(partial(_not_an_object, value) for value in NOT_OBJECTS), _in_an_array),
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
