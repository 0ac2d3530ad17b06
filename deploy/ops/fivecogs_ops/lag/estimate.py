"""Lag in seconds: how long ago was the first record the group has not consumed written?

From the record itself where it can be read: its timestamp (CreateTime, its producer's clock), fetched once per
(topic, partition, offset) by a consumer of no group (`sampling.record_times`, cached in the sample store) —
method "record". Without it, as kafka-lag-exporter does, from a table of (log-end offset, time) samples of the
partition: the record at the committed offset was appended between the last sample whose end had not reached it
and the first whose end had passed it; interpolate between the two — method "interpolated", only as good as the
samples are dense (a burst between two samples 20 s apart is placed evenly across those 20 s). The table code is
the services' own (`fivecogs_shared.lag`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fivecogs_ops.lag.sampling import Sample
from fivecogs_shared.lag import EndOffsetTable, written_at

# (topic, partition)
Partition = tuple[str, int]


@dataclass(frozen=True)
class Estimate:
    seconds: float | None
    method: str  # "caught-up", "interpolated", "record" (its timestamp), or "unknown"


def tables(history: Iterable[Sample], horizon: float = 7200.0) -> dict[Partition, EndOffsetTable]:
    """One table per partition; end offsets do not depend on the group, so every group's samples feed it."""
    built: dict[Partition, EndOffsetTable] = {}
    seen: set[tuple[str, int, float]] = set()
    for sample in sorted(history, key=lambda s: s.time):
        if (sample.topic, sample.partition, sample.time) in seen:
            continue
        seen.add((sample.topic, sample.partition, sample.time))
        built.setdefault((sample.topic, sample.partition), EndOffsetTable(horizon)).add(sample.end, sample.time)
    return built


def interpolated(table: EndOffsetTable | None, committed: int, end: int, now: float) -> Estimate | None:
    """None when the table does not reach back to the committed offset's record."""
    if committed >= end:
        return Estimate(0.0, "caught-up")
    at = written_at(table.points, committed) if table else None
    return None if at is None else Estimate(max(0.0, now - at), "interpolated")


def from_record(timestamp: float | None, now: float) -> Estimate:
    """From the record's own timestamp (CreateTime, set by its producer's clock)."""
    return Estimate(None, "unknown") if timestamp is None else Estimate(max(0.0, now - timestamp), "record")


def behind(table: EndOffsetTable | None, record_at: float | None, committed: int, end: int, now: float) -> Estimate:
    """The record's timestamp when it was read; interpolation only as the fallback; "unknown" without either."""
    if committed >= end:
        return Estimate(0.0, "caught-up")
    if record_at is not None:
        return from_record(record_at, now)
    return interpolated(table, committed, end, now) or from_record(None, now)
