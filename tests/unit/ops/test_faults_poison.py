"""The fault suite's poison against two readers: the model's intake (simulate/intake.py, written from
docs/partners.md) and the services' own `read_event`. Every variant of every kind must read as its kind in
the model, and both readers must give every record the same kind: were they to differ, the suite would count
mismatches that are nobody's fault, or miss a limit the services do not keep."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fivecogs_ops.faults import poison
from fivecogs_ops.faults.workload import build_workload
from fivecogs_ops.simulate.intake import cog_of, read
from fivecogs_ops.simulate.records import Headers, Sent, with_headers, with_value
from fivecogs_ops.simulate.scenario import build_scenario
from fivecogs_shared.contracts import PARTNER_EVENT_TYPES
from fivecogs_shared.contracts.partner import partner_types_of
from fivecogs_shared.envelope import read_event
from fivecogs_shared.errors import BadRecord

TAG = "run-1-test"
MAX_VALUE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Record:
    """A consumer record as `read_event` sees it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers


def model_kind(sent: Sent) -> str:
    reading = read(sent)
    return reading if isinstance(reading, str) else "accepted"


def real_kind(sent: Sent) -> str:
    record = Record(sent.topic, 0, 0, sent.key, sent.value, sent.headers)
    try:
        read_event(record, partner_types_of(cog_of(sent.topic)), MAX_VALUE_BYTES)
    except BadRecord as bad:
        return bad.kind
    return "accepted"


def _templates() -> list[Sent]:
    """One good record of every event type the scenario sends: every cog's topic and contract."""
    by_type: dict[str, Sent] = {}
    for sent in build_scenario(3, 1, TAG).records():
        if poison.can_template(sent):
            by_type.setdefault(sent.ce_type, sent)
    return list(by_type.values())


TEMPLATES = _templates()
TWINS = [
    (kind, turn)
    for kind in poison.KINDS
    if kind != "conflict"  # an inbox matter: both readers take it in, the inbox refuses it
    for turn in range(len(poison.VARIANTS[kind]))
]


def twins(kind: str, turn: int) -> list[Sent]:
    return [poison.make(kind, sent, f"{TAG}-pz{i:06d}", turn) for i, sent in enumerate(TEMPLATES)]


def test_the_templates_cover_every_cog() -> None:
    assert {cog_of(sent.topic) for sent in TEMPLATES} == {kind.cog for kind in PARTNER_EVENT_TYPES.values()}


@pytest.mark.parametrize(("kind", "turn"), TWINS, ids=[f"{kind}-{turn}" for kind, turn in TWINS])
def test_every_variant_reads_as_its_kind_in_the_model(kind: str, turn: int) -> None:
    for twin in twins(kind, turn):
        assert model_kind(twin) == poison.KINDS[kind], twin.note


@pytest.mark.parametrize(("kind", "turn"), TWINS, ids=[f"{kind}-{turn}" for kind, turn in TWINS])
def test_the_services_reader_agrees_with_the_model_on_every_variant(kind: str, turn: int) -> None:
    for twin in twins(kind, turn):
        assert real_kind(twin) == model_kind(twin), twin.note


def test_a_conflict_reads_as_a_valid_event_in_both() -> None:
    for i, sent in enumerate(TEMPLATES):
        twin = poison.make("conflict", sent, f"{TAG}-pz{i:06d}", 0)
        assert model_kind(twin) == real_kind(twin) == "accepted"


def test_the_twins_stay_small() -> None:
    for kind, turn in TWINS:
        if kind != "oversized":
            assert all(len(twin.value) < 16 * 1024 for twin in twins(kind, turn)), kind


def test_the_suite_sends_every_hostile_variant() -> None:
    workload = build_workload(events=1500, seed=11, copy_delay=200, tag="run-11-test")
    notes = {sent.note for sent in workload.records() if sent.note.startswith("poison: hostile")}
    hostile = len(poison.VARIANTS["hostile_value"]) + len(poison.VARIANTS["hostile_headers"])
    assert len(notes) == hostile


# --- the limits' edges, and look-alikes that are within them: both readers, same kind ----------------------

GOOD = TEMPLATES[0]


def valued(raw: bytes) -> Sent:
    """The good record with one more field whose JSON text is `raw` (an extra field is `schema` if read)."""
    return with_value(GOOD, GOOD.value[:-1] + b', "note": ' + raw + b"}", "", "")


def headed(changes: dict[str, bytes | None], *extra: tuple[str, bytes]) -> Sent:
    sent = with_headers(GOOD, changes, "", "")
    return replace(sent, headers=sent.headers + extra)


def at(moment: datetime) -> Sent:
    return headed({"ce_time": moment.isoformat().encode()})


NOW = datetime.now(UTC)
EDGES: dict[str, Sent] = {
    "nested 16 levels (the object is one)": valued(b"[" * 15 + b"]" * 15),
    "nested 17 levels": valued(b"[" * 16 + b"]" * 16),
    "nested 5,000 levels": valued(b"[" * 5000 + b"]" * 5000),
    "a 40-character number": valued(b"1" * 40),
    "a 41-character number": valued(b"1" * 41),
    "a 40-character float": valued(b"0." + b"1" * 38),
    "1e-400, which underflows to 0": valued(b"1e-400"),
    "-1E400": valued(b"-1E400"),
    "Infinity": valued(b"Infinity"),
    "NaN Infinity and \\u0000 as text": valued(b'"NaN Infinity \\\\u0000 [[[[[[[[[[[[[[[[[["'),
    "a surrogate pair": valued(b'"\\ud83d\\ude00"'),
    "a lone low surrogate": valued(b'"\\udc00"'),
    "a high surrogate before a letter": valued(b'"\\ud800\\u0041"'),
    "a NUL in a field name": valued(b'{"a\\u0000": 1}'),
    "a NUL in a repeated field's first copy": valued(b'{"a": "\\u0000", "a": "x"}'),
    "a raw tab in a string": valued(b'"a\tb"'),
    "a raw DEL in a string": valued(b'"a\x7fb"'),
    "a UTF-8 byte order mark": with_value(GOOD, b"\xef\xbb\xbf" + GOOD.value, "", ""),
    "UTF-16": with_value(GOOD, GOOD.value.decode().encode("utf-16"), "", ""),
    "only spaces": with_value(GOOD, b"   ", "", ""),
    "a string": with_value(GOOD, b'"x"', "", ""),
    "true": with_value(GOOD, b"true", "", ""),
    "an empty array": with_value(GOOD, b"[]", "", ""),
    "32 headers": headed({}, *((f"x-{n}", b"1") for n in range(32 - len(GOOD.headers)))),
    "33 headers": headed({}, *((f"x-{n}", b"1") for n in range(33 - len(GOOD.headers)))),
    "a 1,024-byte header": headed({}, ("x-trace", b"t" * 1024)),
    "a 1,025-byte header": headed({}, ("x-trace", b"t" * 1025)),
    "a 64-byte header name": headed({}, ("x" * 64, b"")),
    "a 65-byte header name": headed({}, ("x" * 65, b"")),
    "8 KiB of headers in all": headed({}, *((f"x-{n}", b"f" * 1000) for n in range(7)), ("x-rest", b"")),
    "ce_source of 66 Thai letters (198 bytes)": headed({"ce_source": ("ก" * 66).encode()}),
    "ce_source of 67 Thai letters (201 bytes)": headed({"ce_source": ("ก" * 67).encode()}),
    "a C1 control in ce_id": headed({"ce_id": f"{TAG}-c1\u0085".encode()}),
    "DEL in ce_id": headed({"ce_id": f"{TAG}-del\x7f".encode()}),
    "ce_id not UTF-8": headed({"ce_id": b"\xc3\x28"}),
    "ce_type with a trailing space": headed({"ce_type": GOOD.ce_type.encode() + b" "}),
    "a tab in an unknown ce_type": headed({"ce_type": b"th.fivecogs.nothing.v1\t"}),
    "ce_specversion repeated": headed({}, ("ce_specversion", b"1.0")),
    "content-type repeated": headed({}, ("content-type", b"application/json")),
    "ce_time at 2000-01-01T00:00Z": at(datetime(2000, 1, 1, tzinfo=UTC)),
    "ce_time a second before 2000 (UTC)": at(datetime(2000, 1, 1, tzinfo=UTC) - timedelta(seconds=1)),
    "ce_time 23 hours ahead": at(NOW + timedelta(hours=23)),
    "ce_time 25 hours ahead": at(NOW + timedelta(hours=25)),
    "ce_time in year 1 with an offset": headed({"ce_time": b"0001-01-01T00:00:00+14:00"}),
}


@pytest.mark.parametrize("name", EDGES)
def test_both_readers_agree_at_the_edges(name: str) -> None:
    sent = EDGES[name]
    assert model_kind(sent) == real_kind(sent)


def test_the_edges_fall_on_the_documented_side() -> None:
    within = ("nested 16 levels", "a 40-character number", "32 headers", "a 1,024-byte header", "8 KiB of")
    over = ("nested 17 levels", "a 41-character number", "33 headers", "a 1,025-byte header", "a 65-byte")
    for name, sent in EDGES.items():
        if name.startswith(within):
            assert model_kind(sent) != "malformed", name  # a value at its limit goes on to the schema
        if name.startswith(over):
            assert model_kind(sent) == "malformed", name


# Where the services' reader and docs/partners.md once parted ways (found by this cross-check): now they agree.
ONCE_APART: dict[str, Sent] = {
    "ce_subject repeated": headed({}, ("ce_subject", b"a"), ("ce_subject", b"b")),
    "ce_datacontenttype repeated": headed({}, *(("ce_datacontenttype", b"application/json"),) * 2),
    "a 41-character negative number": valued(b"-" + b"1" * 40),
    "a 41-character decimal": valued(b"1" * 20 + b"." + b"1" * 20),
    "a 41-character number with an exponent": valued(b"1" * 38 + b"e99"),
    "content-type with 300 bytes of parameters": headed({"content-type": b"application/json; x=" + b"a" * 300}),
}


@pytest.mark.parametrize("name", ONCE_APART)
def test_the_readers_agree_where_they_once_differed(name: str) -> None:
    sent = ONCE_APART[name]
    assert model_kind(sent) == real_kind(sent)


# --- arbitrary hostile snippets and headers -----------------------------------------------------------------

LITERALS = (b"NaN", b"-Infinity", b"1e400", b"1e-400", b"1" * 41, b"1" * 40, b"-0", b"0.5", b"true", b"null")
STRINGS = (
    b'"x"', b'"\\u0000"', b'"\\\\u0000"', b'"\\ud800"', b'"\\ud83d\\ude00"', b'"\xed\xa0\x80"', b'"caf\xc3("', b'"\\""',
)  # fmt: skip


def _array(items: list[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def _object(items: list[tuple[bytes, bytes]]) -> bytes:
    return b"{" + b",".join(name + b":" + value for name, value in items) + b"}"


snippets = st.recursive(
    st.sampled_from(LITERALS + STRINGS),
    lambda inner: (
        st.lists(inner, max_size=4).map(_array)
        | st.lists(st.tuples(st.sampled_from(STRINGS), inner), max_size=3).map(_object)
        | st.tuples(st.integers(1, 20), inner).map(lambda deep: b"[" * deep[0] + deep[1] + b"]" * deep[0])
    ),
    max_leaves=12,
)
some_headers = st.lists(
    st.tuples(
        st.sampled_from(["ce_id", "ce_source", "ce_type", "ce_time", "ce_correlationid", "content-type", "x-trace"]),
        st.binary(max_size=40) | st.binary(min_size=1000, max_size=1100),
    ),
    min_size=1,
    max_size=3,
)
# Half the time no extra header, so that the value's own problems show.
extra_headers = st.just(list[tuple[str, bytes]]()) | some_headers


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snippet=snippets, extra=extra_headers)
def test_both_readers_agree_on_arbitrary_hostile_snippets(snippet: bytes, extra: list[tuple[str, bytes]]) -> None:
    sent = valued(snippet)
    sent = replace(sent, headers=sent.headers + tuple(extra))
    assert model_kind(sent) == real_kind(sent), (snippet, extra)
