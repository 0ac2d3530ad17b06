"""The verdict: what the chain did under faults against what the model says it must have done.

Every item counts as a mismatch: a report figure, an answer or a dead letter missing or unexpected, a held
notice not followed by its event's final outcome, a difference in the number of events that took effect, an
event a service handles that is not in its inbox (a record skipped), a relayed record out of order or skipped, a
row left in an outbox. Dead letters are counted
once per original record (a relay that crashed after publishing sends a dead letter again, which is the
"duplicates at most" the outbox promises).
"""

from __future__ import annotations

import importlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from fivecogs_ops.simulate.collector import Seen
from fivecogs_ops.simulate.compare import (
    Difference,
    Holds,
    Tally,
    answers_seen,
    dead_letters_seen,
    holds_seen,
    report_differences,
    tally,
)
from fivecogs_ops.simulate.figures import Report
from fivecogs_ops.simulate.model import Outcome
from fivecogs_ops.simulate.records import ACCEPTED
from fivecogs_ops.simulate.scenario import Scenario
from fivecogs_shared.contracts import COGS, events_topic, feedback_topic, partner_of_topic
from fivecogs_shared.service import ServiceDefinition

ORIGIN_HEADERS = ("fivecogs_original_topic", "fivecogs_original_partition", "fivecogs_original_offset")


@dataclass
class Verdict:
    differences: list[Difference]
    answers: Tally
    dead_letters: Tally
    holds: Holds
    dlq_records: int  # as written to the DLQ topics, re-sends included
    effective_expected: int
    effective_actual: int
    resent: int  # records a relay sent again after a crash
    order_violations: list[str] = field(default_factory=list)
    outbox_left: int = 0
    not_taken_in: list[str] = field(default_factory=list)  # events a service should hold in its inbox

    @property
    def mismatches(self) -> int:
        return (
            len(self.differences)
            + len(self.answers.missing)
            + len(self.answers.unexpected)
            + len(self.dead_letters.missing)
            + len(self.dead_letters.unexpected)
            + len(self.holds.unresolved)
            + abs(self.effective_expected - self.effective_actual)
            + len(self.order_violations)
            + self.outbox_left
            + len(self.not_taken_in)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "mismatches": self.mismatches,
            "report_differences": [d.__dict__ for d in self.differences],
            "answers": self.answers.to_json(),
            "dead_letters": self.dead_letters.to_json(),
            "holds": self.holds.to_json(),
            "dlq_records": self.dlq_records,
            "events_effective": {"expected": self.effective_expected, "actual": self.effective_actual},
            "relay_resent": self.resent,
            "order_violations": self.order_violations,
            "outbox_left": self.outbox_left,
            "not_taken_in": self.not_taken_in,
        }


async def judge(
    scenario: Scenario,
    outcomes: Sequence[Outcome],
    expected: Report,
    actual: Report,
    records: Sequence[Seen],
    database_url: str,
) -> Verdict:
    tag = scenario.tag
    expected_answers = [answer for outcome in outcomes for answer in outcome.answers]
    letters = [o.dead_letter for o in outcomes if o.dead_letter]
    resent, violations = relay_order(records)
    return Verdict(
        differences=report_differences(expected, actual),
        answers=tally(expected_answers, answers_seen(records, tag, scenario.partners), distinct=True),
        dead_letters=tally(letters, dead_letters_seen(once_per_origin(records), tag)),
        holds=holds_seen(records, tag),
        dlq_records=sum(1 for r in records if r.topic.endswith(".dlq")),
        effective_expected=sum(1 for o in outcomes if o.kind == ACCEPTED),
        effective_actual=await effective_events(database_url, tag),
        resent=resent,
        order_violations=violations,
        outbox_left=await outbox_rows(database_url),
        not_taken_in=await not_taken_in(records, database_url),
    )


def once_per_origin(records: Iterable[Seen]) -> list[Seen]:
    """Dead letters, one per original record (topic, partition, offset)."""
    seen: set[tuple[str, ...]] = set()
    kept = []
    for record in records:
        if not record.topic.endswith(".dlq"):
            continue
        origin = tuple(record.header(name) for name in ORIGIN_HEADERS)
        if origin not in seen:
            seen.add(origin)
            kept.append(record)
    return kept


def _partner_dlq(topic: str) -> bool:
    return topic.endswith(".dlq") and partner_of_topic(topic.removesuffix(".dlq")) is not None


FEEDBACK_PREFIX = feedback_topic("x").removesuffix("x")


def relay_order(records: Iterable[Seen]) -> tuple[int, list[str]]:
    """Re-sent records, and partitions where a relay broke order, on the topics one relay alone writes.

    The relay sends rows in id order and deletes them only after Kafka acked the whole batch; after a crash it
    sends again every row it had not deleted, in the same order, before any new one. So, numbering the records
    of a partition by first appearance, the partition must read as runs of consecutive numbers, each run
    starting at or before the highest number so far and reaching it before anything new: a jump forward means
    a record was skipped, or came before one it should have followed."""
    # Each cog's events, and its partners' dead letters (only that cog's service consumes a partner's topic).
    single_writer = {events_topic(cog) for cog in COGS}
    by_partition: dict[tuple[str, int], list[str]] = defaultdict(list)
    for record in records:
        if record.topic in single_writer or _partner_dlq(record.topic):
            by_partition[(record.topic, record.partition)].append(_identity(record))
    resent, violations = 0, []
    for (topic, partition), identities in sorted(by_partition.items()):
        again, jumps = _runs(identities)
        resent += again
        violations += [f"{topic}/{partition}: {jump}" for jump in jumps]
    # Every service writes the feedback topics, so their order says nothing; but an answer's ce_id is derived
    # from the record it answers, so one seen twice was sent again (a relay's first batch may hold only answers).
    answers = Counter(r.header("ce_id") for r in records if r.topic.startswith(FEEDBACK_PREFIX))
    return resent + sum(n - 1 for n in answers.values()), violations


def _identity(record: Seen) -> str:
    if record.topic.endswith(".dlq"):
        return "/".join(record.header(name) for name in ORIGIN_HEADERS)
    return record.header("ce_id")


def _runs(identities: Sequence[str]) -> tuple[int, list[str]]:
    number: dict[str, int] = {}
    previous, again, jumps = -1, 0, []
    for offset, identity in enumerate(identities):
        again += identity in number
        current = number.setdefault(identity, len(number))
        if current > previous + 1:
            jumps.append(f"offset {offset}: record #{current} follows #{previous}")
        previous = current
    return again, jumps


async def not_taken_in(records: Sequence[Seen], database_url: str) -> list[str]:
    """Internal events that a service has a handler for but that are not in its inbox: a record it skipped.

    Partners send every event twice, so a lost partner record can hide behind its copy; internal events are
    published once (a relay's re-send has the same id), so their inboxes show any loss."""
    missing: list[str] = []
    conn = await asyncpg.connect(database_url)
    try:
        for cog in COGS:
            definition: ServiceDefinition = importlib.import_module(f"fivecogs_{cog}.app").DEFINITION
            rows = await conn.fetch(f"SELECT source, event_id FROM {cog}.inbox")
            held = {(row["source"], row["event_id"]) for row in rows}
            missing += [f"{cog}: {m}" for m in _handled_not_held(records, definition, held)]
    finally:
        await conn.close()
    return missing


def _handled_not_held(
    records: Sequence[Seen], definition: ServiceDefinition, held: set[tuple[str, str]]
) -> Iterator[str]:
    sources = definition.sources().upstream
    for record in records:
        source = sources.get(record.topic)
        event_type = source.registry.get(record.header("ce_type")) if source else None
        if event_type is None or (event_type.handled_as or event_type.ce_type) not in definition.handlers:
            continue  # not read by this service, or read and ignored (no handler: nothing to remember)
        if (record.header("ce_source"), record.header("ce_id")) not in held:
            where = f"{record.topic}/{record.partition}@{record.offset}"
            yield f"{record.header('ce_type')} {record.header('ce_id')} ({where})"


async def effective_events(database_url: str, tag: str) -> int:
    """Partner events of this run that took effect: in the inboxes as accepted."""
    conn = await asyncpg.connect(database_url)
    try:
        total = 0
        for cog in COGS:
            total += await conn.fetchval(
                f"SELECT count(*) FROM {cog}.inbox WHERE left(event_id, length($1)) = $1 AND outcome = $2",
                tag,
                ACCEPTED,
            )
        return total
    finally:
        await conn.close()


async def outbox_rows(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return sum([await conn.fetchval(f"SELECT count(*) FROM {cog}.outbox") for cog in COGS])
    finally:
        await conn.close()
