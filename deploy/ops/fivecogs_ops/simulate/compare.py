"""Expected against actual: report figures field by field, and every answer and dead letter one by one.

Answers are final outcomes (accepted, rejected, and the order answers). A `held` notice is not one: when it
comes depends on arrival, so it is not compared with the model, but each must be followed by a final outcome
for the same event (`holds_seen`)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fivecogs_ops.simulate.collector import Seen
from fivecogs_ops.simulate.figures import FIELD_NAMES, Report, Row
from fivecogs_ops.simulate.model import Answer, DeadLetter
from fivecogs_shared.contracts.feedback import (
    ACCEPTED_TYPE,
    HELD_TYPE,
    ORDER_ACCEPTED_TYPE,
    ORDER_REJECTED_TYPE,
    REJECTED_TYPE,
)
from fivecogs_shared.envelope import CORRELATION_HEADER

FEEDBACK_PREFIX = "fivecogs.feedback."  # + the partner's id: contracts.topics.feedback_topic

ANSWER_KINDS = {
    ACCEPTED_TYPE: "accepted",
    REJECTED_TYPE: "rejected",
    ORDER_ACCEPTED_TYPE: "order.accepted",
    ORDER_REJECTED_TYPE: "order.rejected",
}
FINAL_KINDS = ("accepted", "rejected")  # an event's one outcome (the order answers come besides)


@dataclass(frozen=True)
class Difference:
    table: str  # provinces | regions
    name: str  # the province or region, or "totals"
    field: str
    expected: str
    actual: str


def report_differences(expected: Report, actual: Report) -> list[Difference]:
    return [
        *_table("provinces", expected.provinces, actual.provinces),
        *_rows("provinces", "totals", expected.province_totals, actual.province_totals),
        *_table("regions", expected.regions, actual.regions),
        *_rows("regions", "totals", expected.region_totals, actual.region_totals),
    ]


def _table(table: str, expected: Mapping[str, Row], actual: Mapping[str, Row]) -> list[Difference]:
    found: list[Difference] = []
    for name in sorted({*expected, *actual}):
        found += _rows(table, name, expected.get(name), actual.get(name))
    return found


def _rows(table: str, name: str, expected: Row | None, actual: Row | None) -> list[Difference]:
    if expected is None or actual is None:
        # A row that should not be there, or is missing: show it whole.
        present = expected or actual
        assert present is not None
        return [
            Difference(table, name, f, _shown(expected, f), _shown(actual, f)) for f in FIELD_NAMES if present.value(f)
        ] or [Difference(table, name, "(row)", "present" if expected else "absent", "present" if actual else "absent")]
    return [
        Difference(table, name, f, _shown(expected, f), _shown(actual, f))
        for f in FIELD_NAMES
        if expected.value(f) != actual.value(f)
    ]


def _shown(row: Row | None, field: str) -> str:
    return "—" if row is None else str(row.to_json()[field])


@dataclass(frozen=True)
class Tally:
    """Expected and seen records of one kind (answers or dead letters)."""

    expected: int
    seen: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    theirs: tuple[str, ...] = ()  # unexpected, but about records other consumer groups read as well

    @property
    def matches(self) -> bool:
        return not self.missing and not self.unexpected

    def to_json(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "seen": self.seen,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "answered_by_other_consumers": self.theirs,
        }


Said = Answer | DeadLetter


def tally(
    expected: Iterable[Said],
    seen: Iterable[Said],
    distinct: bool = False,
    theirs: Callable[[Said], bool] = lambda _: False,
) -> Tally:
    """Compare as multisets, or as sets when other consumers may repeat what the chain says (`distinct`).
    `theirs` tells which surplus records may come from another consumer rather than from the chain."""
    if distinct:
        expected, seen = set(expected), set(seen)
    wanted, got = Counter(expected), Counter(seen)
    surplus = list((got - wanted).elements())
    return Tally(
        expected=sum(wanted.values()),
        seen=sum(got.values()),
        missing=tuple(sorted(_describe(item) for item in (wanted - got).elements())),
        unexpected=tuple(sorted(_describe(item) for item in surplus if not theirs(item))),
        theirs=tuple(sorted(_describe(item) for item in surplus if theirs(item))),
    )


def _describe(item: Answer | DeadLetter) -> str:
    if isinstance(item, Answer):
        return f"{item.kind} {item.subject or '(no ce_id)'} from {item.partner}: {item.detail}"
    return f"{item.topic} {item.ident}: {item.kind}"


def answers_seen(records: Iterable[Seen], tag: str, partners: Iterable[str]) -> list[Answer]:
    """This run's answers on its partners' feedback topics: those about its event ids or order ids, and those
    about records that had no ce_id at all."""
    found, ours = [], frozenset(partners)
    for record in records:
        if not record.topic.startswith(FEEDBACK_PREFIX):
            continue
        kind = ANSWER_KINDS.get(record.header("ce_type"))
        data = json.loads(record.value)
        partner = record.topic.removeprefix(FEEDBACK_PREFIX)
        if kind in FINAL_KINDS and _ours(data["event_id"], tag, partner, ours):
            detail = data["reason"] if kind == "rejected" else data["event_type"]
            found.append(Answer(partner, kind, data["event_id"], detail))
        elif kind and kind not in FINAL_KINDS and str(data.get("order_id", "")).startswith(tag):
            detail = data["total_thb"] if kind == "order.accepted" else data["reason"]
            found.append(Answer(partner, kind, data["order_id"], detail))
    return found


@dataclass
class Holds:
    """The `held` notices of a run, and what became of the events they were about."""

    held: set[tuple[str, str]] = field(default_factory=set)  # (partner, event id) of every event held
    released: set[tuple[str, str]] = field(default_factory=set)  # held, then accepted
    refused: set[tuple[str, str]] = field(default_factory=set)  # held, then rejected (mostly: its wait expired)
    longest_wait: float = 0.0  # seconds from a held notice to the acceptance of its event
    waiting: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (partner, event id) -> until

    @property
    def unresolved(self) -> list[str]:
        """Held notices with no final outcome after them: each is a mismatch."""
        return [
            f"held {event_id} from {partner}: no accepted or rejected after it (held until {until:%H:%M:%S})"
            for (partner, event_id), until in sorted(self.waiting.items())
        ]

    @property
    def latest_until(self) -> datetime | None:
        return max(self.waiting.values(), default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "held": len(self.held),
            "released": len(self.released),
            "refused": len(self.refused),
            "longest_wait_seconds": round(self.longest_wait, 1),
            "unresolved": self.unresolved,
        }


def holds_seen(records: Iterable[Seen], tag: str) -> Holds:
    """Every held notice about this run's events must be followed, on the same feedback topic (one partition, in
    order), by a final outcome for the same event id."""
    holds, since = Holds(), dict[tuple[str, str], float]()
    for record in records:
        if not record.topic.startswith(FEEDBACK_PREFIX):
            continue
        ce_type = record.header("ce_type")
        if ce_type not in (HELD_TYPE, ACCEPTED_TYPE, REJECTED_TYPE):
            continue
        data = json.loads(record.value)
        if not data["event_id"].startswith(tag):
            continue
        key = (record.topic.removeprefix(FEEDBACK_PREFIX), data["event_id"])
        if ce_type == HELD_TYPE:
            holds.held.add(key)
            holds.waiting[key] = datetime.fromisoformat(data["until"])
            since.setdefault(key, record.timestamp)
        elif key in holds.waiting:
            del holds.waiting[key]
            if ce_type == ACCEPTED_TYPE:
                holds.released.add(key)
                holds.longest_wait = max(holds.longest_wait, record.timestamp - since[key])
            else:
                holds.refused.add(key)
    return holds


def _ours(event_id: str, tag: str, partner: str, partners: frozenset[str]) -> bool:
    return event_id.startswith(tag) or (event_id == "" and partner in partners)


def dead_letters_seen(records: Iterable[Seen], tag: str) -> list[DeadLetter]:
    """This run's dead letters written by the chain's own services (test instances of a service, in groups of
    their own, may read the same ingest topics and dead-letter the same records again)."""
    found = []
    for record in records:
        if not record.topic.endswith(".dlq"):
            continue
        cog = record.topic.split(".")[1]
        if record.header("fivecogs_consumer_group") != f"fivecogs-{cog}":
            continue
        event_id = record.header("ce_id")
        key = (record.key or b"").decode(errors="replace")
        ident = event_id or f"key:{key}"
        if event_id.startswith(tag) or (not event_id and key.startswith(tag)):
            found.append(DeadLetter(record.topic, ident, record.header("fivecogs_error_kind")))
    return found


def foreign_records(records: Iterable[Seen], tag: str) -> int:
    """Records that other partners (or tests posing as a cog) put on the chain's ingest and events topics while
    the scenario played: the report then moves by more than the model can know."""
    foreign = 0
    for record in records:
        if record.topic.endswith(".ingest"):
            key = (record.key or b"").decode(errors="replace")
            ours = record.header("ce_id").startswith(tag) or key.startswith(tag)
        elif record.topic.endswith(".events"):
            ours = record.header(CORRELATION_HEADER).startswith(tag)
        else:
            continue
        foreign += not ours
    return foreign


def foreign_consumers(records: Iterable[Seen], tag: str) -> dict[str, set[str]]:
    """Consumer groups other than the chain's that dead-lettered this run's records, with the topics they read:
    their answers on the feedback topic about records of those topics cannot be told from the chain's."""
    groups: dict[str, set[str]] = defaultdict(set)
    for record in records:
        if record.topic.endswith(".dlq") and record.header("ce_id").startswith(tag):
            group = record.header("fivecogs_consumer_group")
            if group != f"fivecogs-{record.topic.split('.')[1]}":
                groups[group].add(record.header("fivecogs_original_topic"))
    return dict(groups)
