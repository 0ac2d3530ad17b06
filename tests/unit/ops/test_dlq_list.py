"""`fivecogs dlq list` without a cluster: what it prints for dead letters and parked outbox rows (at 80 columns,
names whole), its JSON, how a record's headers become its fields, and its refusals."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime

import pytest
from aiokafka import ConsumerRecord
from rich.console import Console

from fivecogs_ops.dlq import DeadLetterPartition, ParkedOutbox
from fivecogs_ops.dlq_records import DeadLetter, DeadLetterListing, belongs, dead_letter, wanted
from fivecogs_ops.dlq_show import listing_json, show_listing
from fivecogs_shared.outbox import ParkedRow

PARKED_AT = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
TOPIC = "fivecogs.communication.ingest.cdd-nakhon-si-thammarat.dlq"
CE_TYPE = "th.fivecogs.communication.message.requested.v1"
DETAIL = "ce_type 'th.fivecogs.x' is not a type this topic takes; docs/partners.md lists the ones it does"


def letter(n: int, *, replayed: bool = False, whole: bool = True) -> DeadLetter:
    return DeadLetter(
        topic=TOPIC,
        partition=2,
        offset=1230 + n,
        time=PARKED_AT,
        partner="cdd-nakhon-si-thammarat",
        cog="communication",
        ce_id=f"0000000{n}-6c1e-4b57-9d1a-2f7f0c1e5a3b",
        ce_type=CE_TYPE,
        kind="bad_envelope",
        detail=DETAIL,
        read_at=f"{TOPIC.removesuffix('.dlq')}/2@{99 + n}",
        consumer_group="fivecogs-communication",
        replayed=replayed,
        whole=whole,
    )


FOUND = DeadLetterListing([letter(1, replayed=True), letter(2, whole=False)], 1, 1, Counter(bad_envelope=1))
PARKED = ParkedOutbox(
    "communication",
    1,
    [ParkedRow(7, "fivecogs.feedback.cdd-nakhon-si-thammarat", b"ent-77", 1_234_567, "MessageSizeTooLarge", PARKED_AT)],
)


def printed(width: int) -> str:
    out = Console(record=True, width=width, color_system=None, file=io.StringIO())
    show_listing(out, FOUND, [PARKED, ParkedOutbox("inputs", None, [])], limit=200)
    return out.export_text()


def test_at_80_columns_every_name_and_id_is_whole() -> None:
    text = printed(80)
    assert all(len(line) <= 80 for line in text.splitlines())
    for whole in (
        TOPIC,
        "00000001-6c1e-4b57-9d1a-2f7f0c1e5a3b",
        "00000002-6c1e-4b57-9d1a-2f7f0c1e5a3b",
        CE_TYPE,
        "2@1231  2026-12-03 08:00:00 replayed",
        "2@1232  2026-12-03 08:00:00",
        "fivecogs.feedback.cdd-nakhon-si-thammarat",
        "1,234,567",
    ):
        assert whole in text, whole
    assert f"{TOPIC} · partner cdd-nakhon-si-thammarat" in " ".join(text.split())
    assert all(word in text.split() for word in DETAIL.split())  # the detail wraps, at its spaces
    assert "slice" in text
    assert text.splitlines()[0] == "dead letters: 1 waiting (bad_envelope 1), 1 replayed"
    assert "no outbox_parked table yet (it comes with the service's next start): inputs" in text


@pytest.mark.parametrize("width", [80, 120])
def test_an_id_of_any_length_never_hides_the_reason(width: int) -> None:
    long = DeadLetterListing([DeadLetter(**{**vars(letter(1)), "ce_id": "x" * 300})], 1, 0, Counter(bad_envelope=1))
    out = Console(record=True, width=width, color_system=None, file=io.StringIO())
    show_listing(out, long, [], limit=None)
    text = out.export_text()
    assert "bad_envelope" in text
    assert all(word in text.split() for word in DETAIL.split())
    assert "x" * 40 + "…" in text  # cut in the table; whole in --json


def test_a_partners_text_reaches_the_terminal_as_plain_text() -> None:
    hostile = DeadLetterListing(
        [DeadLetter(**{**vars(letter(1)), "ce_id": "[bold]x\x1b[2J", "detail": "[red]boom[/red]\nline two"})],
        1,
        0,
        Counter(bad_envelope=1),
    )
    out = Console(record=True, width=120, color_system=None, file=io.StringIO())
    show_listing(out, hostile, [], limit=None)
    text = out.export_text()
    assert "[bold]x [2J" in text  # markup shown as typed, the escape character gone
    assert "[red]boom[/red] line two" in text
    assert "\x1b" not in text


def test_the_json_has_every_field_and_the_whole_counts() -> None:
    body = listing_json(FOUND, [PARKED])
    assert (body["waiting"], body["replayed"], body["shown"], body["by_kind"]) == (1, 1, 2, {"bad_envelope": 1})
    assert body["dead_letters"][1] == {
        "topic": TOPIC,
        "partition": 2,
        "offset": 1232,
        "time": "2026-12-03T08:00:00+00:00",
        "partner": "cdd-nakhon-si-thammarat",
        "cog": "communication",
        "ce_id": "00000002-6c1e-4b57-9d1a-2f7f0c1e5a3b",
        "ce_type": CE_TYPE,
        "kind": "bad_envelope",
        "detail": DETAIL,
        "read_at": "fivecogs.communication.ingest.cdd-nakhon-si-thammarat/2@101",
        "consumer_group": "fivecogs-communication",
        "replayed": False,
        "whole": False,
    }
    assert body["parked_outbox"][0]["rows"][0]["key"] == "ent-77"


def _record(topic: str, offset: int, headers: list[tuple[str, bytes]]) -> ConsumerRecord:
    return ConsumerRecord(topic, 0, offset, int(PARKED_AT.timestamp() * 1000), 0, b"k", b"v", None, 1, 1, headers)


def test_a_record_becomes_a_dead_letter_from_the_headers_the_consumer_writes() -> None:
    headers = [
        ("ce_id", b"ev-1"),
        ("ce_type", b"th.fivecogs.input.delivered.v1"),
        ("fivecogs_error_kind", b"rule_violation"),
        ("fivecogs_error_detail", b"quantity must be positive"),
        ("fivecogs_original_topic", b"fivecogs.inputs.ingest.acme"),
        ("fivecogs_original_partition", b"0"),
        ("fivecogs_original_offset", b"41"),
        ("fivecogs_consumer_group", b"fivecogs-inputs"),
    ]
    progress = DeadLetterPartition("fivecogs.inputs.ingest.acme.dlq", 0, replayed=5, end=9)
    early, late = (dead_letter(_record(progress.topic, offset, headers), progress) for offset in (4, 5))
    assert (early.replayed, late.replayed) == (True, False)
    assert (late.partner, late.cog, late.ce_id, late.kind) == ("acme", "inputs", "ev-1", "rule_violation")
    assert late.read_at == "fivecogs.inputs.ingest.acme/0@41"
    assert late.time == PARKED_AT  # the record's timestamp, in UTC
    bare = dead_letter(_record("fivecogs.inputs.events.dlq", 0, []), DeadLetterPartition("x", 0, 0, 1))
    assert (bare.kind, bare.ce_id, bare.partner, bare.cog, bare.read_at) == ("unknown", None, None, None, None)


def test_an_events_topics_dead_letters_belong_to_the_service_that_parked_them() -> None:
    partitions = [
        DeadLetterPartition("fivecogs.inputs.ingest.acme.dlq", 0, 0, 1),
        DeadLetterPartition("fivecogs.marketing.ingest.acme.dlq", 0, 0, 1),
        DeadLetterPartition("fivecogs.inputs.events.dlq", 0, 0, 1),
    ]
    assert [p.topic for p in wanted(partitions, "marketing")] == [
        "fivecogs.marketing.ingest.acme.dlq",
        "fivecogs.inputs.events.dlq",  # read, then told apart by consumer group
    ]
    assert [p.topic for p in wanted(partitions, partner="acme")] == [p.topic for p in partitions[:2]]
    group = [("fivecogs_consumer_group", b"fivecogs-marketing-blue")]
    parked = dead_letter(_record("fivecogs.inputs.events.dlq", 0, group), partitions[2])
    assert (belongs(parked, "marketing"), belongs(parked, "knowledge"), belongs(parked, None)) == (True, False, True)


def test_a_long_dlq_is_counted_whole_and_only_the_first_records_kept() -> None:
    from fivecogs_ops.dlq_records import _Tally

    tally = _Tally(cog=None, everything=False, limit=3)
    for n in reversed(range(5_000)):  # read in any order: shown by offset
        tally.add(DeadLetter(**{**vars(letter(1)), "offset": n, "replayed": n < 10}))
    assert (tally.waiting, tally.by_kind) == (4_990, Counter(bad_envelope=4_990))
    assert [shown.offset for shown in tally.shown()] == [10, 11, 12]
    assert len(tally.kept) <= 2 * 3 + 1000  # never the whole DLQ in memory
