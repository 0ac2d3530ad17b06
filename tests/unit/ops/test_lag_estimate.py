"""Lag in seconds: interpolation in (log-end offset, time) tables, and the record timestamp when they fall short."""

from __future__ import annotations

import pytest

from fivecogs_ops.lag.estimate import Estimate, from_record, interpolated, tables
from fivecogs_ops.lag.sampling import Sample
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
