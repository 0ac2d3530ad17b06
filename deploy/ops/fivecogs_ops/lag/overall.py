"""The ops page's overall status: the worst of everything an operator must act on, each with a one-line reason.

It reads one sample as the page serves it (`/api/lag`): the lag report's `status` and `groups`, and beside them
`dlq` (per dead-letter topic), `outbox` (per service, with `parked`) and `held` (per service and reason). A part
that could not be read (`None`) is UNKNOWN: the page cannot say OK about what it did not see."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fivecogs_ops.lag.rules import Status
from fivecogs_ops.lag.table import duration

UNKNOWN = "UNKNOWN"
# Least to most severe. Not knowing is worse than a warning, not as bad as a consumer known to be stopped.
SEVERITY = ("OK", "WARN", UNKNOWN, *(s.name for s in sorted(Status) if s > Status.WARN))


@dataclass(frozen=True)
class Thresholds:
    """When waiting things become a WARN (`fivecogs ops --warn-held-expiry / --warn-outbox-age`)."""

    held_expiry_seconds: float = 60.0  # a held event's wait ends this soon: it gets its final outcome then
    outbox_age_seconds: float = 60.0  # the oldest unsent outbox row is this old: the relay is not publishing


def severity(status: str) -> int:
    """A status the page does not know (a newer lag rule's) counts as UNKNOWN, never as OK."""
    return SEVERITY.index(status if status in SEVERITY else UNKNOWN)


def overall(sample: Mapping[str, Any], thresholds: Thresholds = Thresholds()) -> dict[str, Any]:
    """`{"status": worst, "reasons": [one line per thing to act on]}`."""
    found = [*_lag(sample), *_dead_letters(sample), *_outbox(sample, thresholds), *_held(sample, thresholds)]
    status = max((s for s, _ in found), key=severity, default="OK")
    return {"status": status, "reasons": [reason for _, reason in found]}


Finding = tuple[str, str]  # (status, reason)


def _lag(sample: Mapping[str, Any]) -> Iterator[Finding]:
    if sample.get("error"):
        yield UNKNOWN, f"consumer lag not sampled: {sample['error']}"
    for g in sample.get("groups") or []:
        if g["status"] != "OK":
            yield g["status"], f"{g['group']} {g['status']}: {g['reason']}"


def _dead_letters(sample: Mapping[str, Any]) -> Iterator[Finding]:
    if sample.get("dlq") is None:
        yield UNKNOWN, "dead letters not read (the ops server's log says why)"
        return
    for t in sample["dlq"]:
        if t["waiting"]:
            yield "WARN", f"{_count(t['waiting'], 'dead letter')} waiting in {t['topic']}"


def _outbox(sample: Mapping[str, Any], thresholds: Thresholds) -> Iterator[Finding]:
    if sample.get("outbox") is None:
        yield UNKNOWN, "outboxes not read (the ops server's log says why)"
        return
    for o in sample["outbox"]:
        if o.get("parked"):
            yield "WARN", f"{_count(o['parked'], 'outbox row')} parked in {o['service']} (Kafka refused them)"
        oldest = o.get("oldest_seconds")
        if o.get("rows") and oldest is not None and oldest >= thresholds.outbox_age_seconds:
            unsent = _count(o["rows"], "outbox row")
            yield "WARN", f"{unsent} unsent in {o['service']}, the oldest {duration(oldest)} old"


def _held(sample: Mapping[str, Any], thresholds: Thresholds) -> Iterator[Finding]:
    if sample.get("held") is None:
        yield UNKNOWN, "held events not read (the ops server's log says why)"
        return
    for s in sample["held"]:
        for r in s["by_reason"]:
            left = r.get("expires_in_seconds")
            if left is None or left > thresholds.held_expiry_seconds:
                continue
            held = f"{_count(r['count'], 'held event')} in {s['service']} ({r['reason'].removeprefix('rule:')})"
            if left > 0:
                yield "WARN", f"{held}: the first one's wait ends in {duration(left)}"
            else:
                yield "WARN", f"{held}: the first one's wait ended {duration(-left)} ago (is {s['service']} running?)"


def _count(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"
