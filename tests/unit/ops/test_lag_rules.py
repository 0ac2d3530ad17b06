"""Burrow's rules on synthetic windows: one test per status, plus precedence, group status, exit codes, trend."""

from __future__ import annotations

import calendar

import pytest

from fivecogs_ops.lag.rules import (
    Observation,
    Status,
    Verdict,
    behind_since,
    group_status,
    last_change,
    partition_status,
    trend,
)

WINDOW = 60.0


def seen(*rows: tuple[float, int | None, int]) -> list[Observation]:
    """(time, committed, log end) rows, oldest first."""
    return [Observation(t, committed, end) for t, committed, end in rows]


def test_caught_up_is_ok_whatever_came_before() -> None:
    history = seen((0, 5, 9), (10, 5, 9), (20, 9, 9))
    assert partition_status(history, now=20, window=WINDOW, members=1).status is Status.OK


def test_lag_that_reached_zero_in_the_window_is_ok() -> None:
    history = seen((0, 10, 10), (10, 12, 15), (20, 14, 20))  # lag 0 → 3 → 6, consumer still moving
    verdict = partition_status(history, now=20, window=WINDOW, members=1)
    assert verdict == Verdict(Status.OK, "lag reached zero in the window")


def test_moving_offsets_with_lag_that_never_falls_warn() -> None:
    history = seen((0, 10, 15), (10, 12, 18), (20, 14, 21), (30, 20, 27))  # lag 5, 6, 7, 7
    verdict = partition_status(history, now=30, window=WINDOW, members=1)
    assert verdict.status is Status.WARN
    assert "never falls (5 → 7)" in verdict.reason


def test_moving_offsets_with_lag_that_fell_once_are_ok() -> None:
    history = seen((0, 10, 15), (10, 12, 18), (20, 17, 20), (30, 19, 25))  # lag 5, 6, 3, 6
    assert partition_status(history, now=30, window=WINDOW, members=1).status is Status.OK


def test_unmoving_offset_with_lag_is_a_stall_while_younger_than_the_window() -> None:
    # The commit at t=10 is the last move; the window (t >= 5) sees none, and 20s is less than its 25s.
    history = seen((0, 7, 9), (10, 40, 50), (20, 40, 55), (30, 40, 60))
    verdict = partition_status(history, now=30, window=25, members=1)
    assert verdict.status is Status.STALL
    assert "unmoved at 40 for 20s" in verdict.reason


def test_no_commit_for_longer_than_the_window_is_a_stop() -> None:
    history = seen((0, 40, 50), (30, 40, 50), (61, 40, 52))
    verdict = partition_status(history, now=61, window=WINDOW, members=1)
    assert verdict == Verdict(Status.STOP, "lag 12 waiting 61s with no commit (window 60s)")


def test_no_commit_counts_from_when_there_was_something_to_commit() -> None:
    # Caught up at t=0, quiet until records arrive by t=600: 30 s waiting, not 630 s without a commit.
    history = seen((0, 40, 40), (300, 40, 40), (590, 40, 40), (600, 40, 45), (630, 40, 47))
    assert behind_since(history) == 600
    verdict = partition_status(history, now=630, window=WINDOW, members=1)
    assert verdict == Verdict(Status.OK, "lag reached zero in the window")
    later = partition_status([*history, *seen((661, 40, 47))], now=661, window=WINDOW, members=1)
    assert later == Verdict(Status.STOP, "lag 7 waiting 61s with no commit (window 60s)")


def test_records_after_a_quiet_period_older_than_the_window_stall_before_they_stop() -> None:
    # Quiet since t=0; the window (t >= 70) sees records waiting at t=100 and t=130: 30 s is a STALL, not a STOP.
    history = seen((0, 40, 40), (100, 40, 45), (130, 40, 47))
    verdict = partition_status(history, now=130, window=WINDOW, members=1)
    assert verdict == Verdict(Status.STALL, "committed offset unmoved at 40 for 30s")


def test_a_group_without_members_with_lag_is_a_stop_at_once() -> None:
    # One sample, seconds after the consumer died: nothing will consume it, so page now, not after the window.
    verdict = partition_status(seen((0, 40, 50)), now=0, window=WINDOW, members=0)
    assert verdict == Verdict(Status.STOP, "no members: nothing consumes lag 10")


def test_a_stop_for_missing_members_says_since_when_the_samples_saw_none() -> None:
    # 18:40:00Z one member; 18:42:10Z and since, none: down since then. Every sample without: since before the first.
    alive, gone = calendar.timegm((2026, 12, 3, 18, 40, 0)), calendar.timegm((2026, 12, 3, 18, 42, 10))
    history = [Observation(alive, 40, 40, 1), Observation(gone, 40, 41, 0), Observation(gone + 30, 40, 44, 0)]
    now = gone + 30
    verdict = partition_status(history, now=now, window=WINDOW, members=0)
    assert verdict == Verdict(Status.STOP, "no members since 18:42:10Z: nothing consumes lag 4")
    verdict = partition_status(history[1:], now=now, window=WINDOW, members=0)
    assert verdict == Verdict(Status.STOP, "no members since before 18:42:10Z: nothing consumes lag 4")


def test_lag_zero_earlier_does_not_excuse_a_group_whose_members_are_gone() -> None:
    # Caught up at first, then the consumer died and records kept arriving: lag 0 earlier in the window is moot.
    history = seen((0, 40, 40), (50, 40, 40), (55, 40, 44))
    assert partition_status(history, now=55, window=WINDOW, members=0).status is Status.STOP
    assert partition_status(history, now=55, window=WINDOW, members=1).status is Status.OK  # alive: Burrow's OK


def test_a_caught_up_partition_of_a_group_without_members_is_ok() -> None:
    assert partition_status(seen((0, 9, 9)), now=0, window=WINDOW, members=0) == Verdict(Status.OK, "caught up")


def test_committed_offset_going_backwards_is_a_rewind() -> None:
    history = seen((0, 100, 110), (10, 105, 115), (20, 20, 118))
    verdict = partition_status(history, now=20, window=WINDOW, members=1)
    assert verdict == Verdict(Status.REWIND, "committed offset went back from 105 to 20")


def test_a_rewind_older_than_the_window_no_longer_counts() -> None:
    history = seen((0, 100, 110), (10, 20, 118), (80, 60, 120), (90, 70, 121))  # lag 10, 98, 60, 51
    assert partition_status(history, now=90, window=WINDOW, members=1).status is Status.OK


def test_one_sample_with_lag_cannot_be_judged_yet() -> None:
    verdict = partition_status(seen((0, 3, 8)), now=0, window=WINDOW, members=1)
    assert verdict.status is Status.WARN
    assert "look again" in verdict.reason


def test_a_partition_never_committed_counts_from_the_log_start() -> None:
    history = seen((0, None, 4), (30, None, 4))
    verdict = partition_status(history, now=30, window=WINDOW, members=1)
    assert (verdict.status, history[-1].lag) == (Status.STALL, 4)


def test_last_change_is_when_the_current_offset_was_first_seen() -> None:
    assert last_change(seen((0, 1, 9), (10, 5, 9), (20, 5, 9), (30, 5, 9))) == 10
    assert last_change(seen((0, 5, 9), (10, 5, 9))) == 0  # never changed: as old as the history


def test_group_status_is_the_worst_partition() -> None:
    verdicts = [Verdict(Status.OK, "a"), Verdict(Status.STOP, "b"), Verdict(Status.WARN, "c")]
    assert group_status(verdicts) == Verdict(Status.STOP, "b")
    assert group_status([]).status is Status.OK


@pytest.mark.parametrize(
    ("status", "code"),
    [(Status.OK, 0), (Status.WARN, 1), (Status.REWIND, 2), (Status.STALL, 2), (Status.STOP, 2)],
)
def test_exit_codes_for_scripts(status: Status, code: int) -> None:
    assert status.exit_code == code


def test_trend_tells_whether_it_gets_better() -> None:
    draining = trend([(0, 100), (30, 70), (60, 40)], now=60)
    assert (draining.direction, draining.arrow, draining.rate) == ("down", "↓", -1.0)
    assert draining.drain_seconds == 40.0
    growing = trend([(0, 10), (20, 30)], now=20)
    assert (growing.direction, growing.arrow, growing.drain_seconds) == ("up", "↑", None)
    assert trend([(0, 10), (20, 10)], now=20).direction == "flat"
    assert trend([(0, 500), (100, 10), (110, 10)], now=110).direction == "flat"  # only the recent change counts
    # A group that caught up after a start, then stopped: falling behind now, whatever it did a minute ago.
    assert trend([(0, 6000), (20, 0), (40, 0), (50, 0), (55, 47)], now=55).direction == "up"
    assert trend([(0, 9), (2, 9)], now=2).direction == "flat"  # two looks 2 s apart: compare what there is
    # Sampled every second: three samples back is recent enough to see a stop that followed a catch-up.
    every_second = [(float(t), 600 - 100 * t) for t in range(7)] + [(7.0, 0), (8.0, 0), (9.0, 15), (10.0, 15)]
    assert trend(every_second, now=10).direction == "up"
    assert trend([(0, 0)], now=0).drain_seconds == 0.0


def test_a_report_judges_each_partition_against_the_stored_samples() -> None:
    from fivecogs_ops.lag.estimate import tables
    from fivecogs_ops.lag.report import build_report, downsample
    from fivecogs_ops.lag.sampling import Sample, Snapshot
    from fivecogs_shared.kafka_admin import GroupDescription

    group, topic = "fivecogs-knowledge", "fivecogs.inputs.events"
    history = [
        Sample(group, topic, 0, 0.0, 10, 10),
        Sample(group, topic, 1, 0.0, 5, 9),
        Sample(group, topic, 0, 30.0, 10, 10),
        Sample(group, topic, 1, 30.0, 5, 12),
    ]
    latest = [Sample(group, topic, 0, 40.0, 10, 10), Sample(group, topic, 1, 40.0, 5, 15)]
    snapshot = Snapshot(40.0, latest, {group: GroupDescription(group, "Empty", ())})
    report = build_report(snapshot, history, tables([*history, *latest]), 30.0, {})

    [knowledge] = report.groups
    assert [p.status for p in knowledge.partitions] == [Status.OK, Status.STOP]
    assert (knowledge.status, knowledge.lag) == (Status.STOP, 10)
    assert knowledge.reason == f"{topic}/1: no members: nothing consumes lag 10"
    assert (knowledge.lag_seconds, knowledge.estimate) == (None, "unknown")  # older than the samples, no record read
    assert knowledge.series == [(0.0, 4), (30.0, 7), (40.0, 10)]
    assert knowledge.trend.direction == "up"
    assert (report.status.exit_code, report.needs_second_look()) == (2, False)
    body = report.to_json(series=True)
    assert body["groups"][0]["partitions"][1]["status"] == "STOP"
    assert body["groups"][0]["series"] == [[0.0, 4], [30.0, 7], [40.0, 10]]
    assert len(downsample([(float(t), t % 7) for t in range(1000)], points=100)) <= 100
