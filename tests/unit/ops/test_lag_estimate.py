"""Lag in seconds: the first unconsumed record's own timestamp, read once per offset (cached in the sample store),
and interpolation in (log-end offset, time) tables only without it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from fivecogs_ops.lag import report, store
from fivecogs_ops.lag.estimate import Estimate, behind, from_record, interpolated, tables
from fivecogs_ops.lag.sampling import Sample
from fivecogs_ops.lag.store import SampleStore
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.lag import EndOffsetTable, written_at


def table(*points: tuple[int, float]) -> EndOffsetTable:
    built = EndOffsetTable()
    for end, at in points:
        built.add(end, at)
    return built


def test_a_record_is_placed_between_the_samples_around_it() -> None:
    # End 100 at t=0, 200 at t=100: offset 149 (the 50th new record) was appended at t=50.
    assert written_at([(100, 0.0), (200, 100.0)], 149) == pytest.approx(50.0)
    assert written_at([(100, 0.0), (200, 100.0)], 100) == pytest.approx(1.0)


def test_lag_seconds_grow_while_the_consumer_does_not_move() -> None:
    t = table((100, 0.0), (200, 100.0))
    first = interpolated(t, committed=149, end=200, now=100.0)
    later = interpolated(t, committed=149, end=200, now=130.0)
    assert first is not None
    assert later is not None
    assert first.method == later.method == "interpolated"
    assert first.seconds == pytest.approx(50.0)
    assert later.seconds == pytest.approx(80.0)


def test_a_caught_up_consumer_is_zero_seconds_behind() -> None:
    assert interpolated(table((5, 0.0)), committed=5, end=5, now=99.0) == Estimate(0.0, "caught-up")


def test_a_record_older_than_the_table_needs_its_own_timestamp() -> None:
    t = table((300, 50.0), (320, 60.0))
    assert interpolated(t, committed=10, end=320, now=70.0) is None
    assert from_record(20.0, now=70.0) == Estimate(50.0, "record")
    assert from_record(None, now=70.0) == Estimate(None, "unknown")


def test_a_quiet_partition_keeps_when_its_flat_run_ended() -> None:
    # Nothing written from t=0 to t=500, then 10 records by t=510: they are seconds old, not minutes.
    t = table((50, 0.0), (50, 100.0), (50, 500.0), (60, 510.0))
    assert t.points == [(50, 0.0), (50, 500.0), (60, 510.0)]  # the flat run keeps its ends only
    estimate = interpolated(t, committed=50, end=60, now=510.0)
    assert estimate is not None
    assert estimate.seconds == pytest.approx(9.0)


def test_the_service_side_table_gives_a_lower_bound_beyond_its_reach() -> None:
    t = table((300, 50.0), (320, 60.0))
    assert t.lag_seconds(10, now=70.0) == (20.0, False)
    seconds, exact = t.lag_seconds(310, now=70.0)
    assert seconds == pytest.approx(14.5)
    assert exact
    assert t.lag_seconds(320, now=70.0) == (0.0, True)


def test_a_log_that_goes_backwards_starts_a_new_table() -> None:
    assert table((500, 0.0), (600, 10.0), (5, 20.0)).points == [(5, 20.0)]


def test_the_table_forgets_beyond_its_horizon_but_keeps_an_anchor() -> None:
    t = EndOffsetTable(horizon=100.0)
    for i in range(10):
        t.add(i * 10, i * 50.0)
    assert t.points[0][1] < 450.0 - 100.0 <= t.points[1][1]


def test_one_table_per_partition_from_every_groups_samples() -> None:
    history = [
        Sample("fivecogs-knowledge", "fivecogs.inputs.events", 0, 10.0, 3, 10),
        Sample("fivecogs-marketing", "fivecogs.inputs.events", 0, 10.0, 9, 10),  # same moment, same end
        Sample("fivecogs-marketing", "fivecogs.inputs.events", 0, 20.0, 9, 30),
        Sample("fivecogs-marketing", "fivecogs.inputs.events", 1, 20.0, 0, 4),
    ]
    built = tables(history)
    assert built[("fivecogs.inputs.events", 0)].points == [(10, 10.0), (30, 20.0)]
    assert built[("fivecogs.inputs.events", 1)].points == [(4, 20.0)]


def test_the_records_own_timestamp_wins_over_interpolation() -> None:
    # Samples 24 s apart, 50 records written at once at t=55.2, looked at t=80: interpolation spreads the burst
    # over the 24 s and places the first at 40.5 (39.5 s behind); the record says 24.8 s.
    t = table((100, 40.0), (150, 64.0))
    read = behind(t, 55.2, committed=100, end=150, now=80.0)
    guess = behind(t, None, committed=100, end=150, now=80.0)
    assert (read.method, guess.method) == ("record", "interpolated")
    assert read.seconds == pytest.approx(24.8)
    assert guess.seconds == pytest.approx(39.52)
    assert behind(t, 55.2, committed=150, end=150, now=80.0) == Estimate(0.0, "caught-up")
    assert behind(None, None, committed=3, end=150, now=80.0) == Estimate(None, "unknown")


def test_the_store_keeps_record_times_and_retries_unread_ones(tmp_path: Path, monkeypatch: Any) -> None:
    samples = SampleStore(tmp_path / "samples.sqlite3")
    samples.add_record_times({("t", 0, 5): 100.5, ("t", 1, 9): None})
    assert samples.record_times([("t", 0, 5), ("t", 1, 9), ("t", 2, 0)]) == {("t", 0, 5): 100.5, ("t", 1, 9): None}
    later = time.time() + store.RETRY_UNREAD_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert samples.record_times([("t", 0, 5), ("t", 1, 9)]) == {("t", 0, 5): 100.5}  # unread: ask Kafka again


async def test_a_record_is_fetched_once_per_offset(tmp_path: Path, monkeypatch: Any) -> None:
    asked: list[dict[TopicPartition, int]] = []

    async def from_kafka(_: KafkaAccess, offsets: dict[TopicPartition, int], timeout: float) -> Any:
        asked.append(dict(offsets))
        return {tp: 1000.0 + o for tp, o in offsets.items() if tp.partition == 0}  # partition 1's never arrives

    monkeypatch.setattr(report, "record_times", from_kafka)
    samples, kafka = SampleStore(tmp_path / "samples.sqlite3"), KafkaAccess("127.0.0.1:1", "PLAINTEXT")
    wanted = {("t", 0, 7), ("t", 0, 9), ("t", 1, 3)}  # two groups behind on partition 0 at different offsets
    first = await report.read_record_times(kafka, samples, wanted, timeout=1)
    again = await report.read_record_times(kafka, samples, wanted, timeout=1)
    assert first == again == {("t", 0, 7): 1007.0, ("t", 0, 9): 1009.0}
    assert len(asked) == 2  # one offset per partition per round, and none the second time
    moved = await report.read_record_times(kafka, samples, {("t", 0, 12)}, timeout=1)
    assert (moved, asked[-1]) == ({("t", 0, 12): 1012.0}, {TopicPartition("t", 0): 12})
