"""`run_simulation`: play a scenario on the running chain and compare it with the model, stage by stage.

The records go out in the arrival order asked for (`arrival`: step by step as written, or shuffled block by
block), wave by wave, the chain catching up after each; the model is given that same order. At the end the run
waits for every event still held to get its final outcome (what the scenario refers to that never comes is
rejected when its wait expires).

The stack may hold data from earlier runs, so the report is read before and after and the model's figures are
compared as a delta: expected = before + model, province by province and region by region.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fivecogs_ops.simulate.arrival import ORDERED, Arrival, Stage, arrange
from fivecogs_ops.simulate.catchup import Lag, LagWatcher
from fivecogs_ops.simulate.collector import Collector
from fivecogs_ops.simulate.compare import (
    Difference,
    Holds,
    Tally,
    answers_seen,
    dead_letters_seen,
    foreign_consumers,
    foreign_records,
    holds_seen,
    report_differences,
    tally,
)
from fivecogs_ops.simulate.figures import Report
from fivecogs_ops.simulate.holds import await_outcomes
from fivecogs_ops.simulate.model import Answer, ChainModel, DeadLetter, Outcome
from fivecogs_ops.simulate.play import (
    Publisher,
    answer_topics,
    chain_topics,
    communication_topics,
    fetch_report,
    provision,
    read_history,
)
from fivecogs_ops.simulate.scenario import Scenario, build_scenario
from fivecogs_shared.contracts import ingest_topic
from fivecogs_shared.kafka_access import KafkaAccess


class Progress:
    """What a simulation tells its watcher; every method may be left as this no-op."""

    def stage(self, text: str) -> None: ...

    def publishing(self, step: str, records: int) -> None: ...

    def sent(self, records: int) -> None: ...

    def published(self, step: str, records: int, seconds: float) -> None: ...

    def lag(self, lag: Lag) -> None: ...

    def caught_up(self, seconds: float) -> None: ...

    def holding(self, holds: Holds) -> None: ...


@dataclass(frozen=True)
class StepTiming:
    name: str
    records: int
    publish_seconds: float
    catch_up_seconds: float | None

    @property
    def events_per_second(self) -> float:
        return self.records / self.publish_seconds if self.publish_seconds else 0.0


@dataclass
class SimulationResult:
    scenario: Scenario
    outcomes: list[Outcome]
    model: Report  # what the scenario adds to the report
    arrival: Arrival = ORDERED
    stages: list[Stage] = field(default_factory=list)  # what was published, in order
    before: Report | None = None
    expected: Report | None = None
    actual: Report | None = None
    differences: list[Difference] = field(default_factory=list)
    answers: Tally | None = None
    dead_letters: Tally | None = None
    holds: Holds | None = None  # held notices, and whether each event then got its final outcome
    held_wait_seconds: float | None = None  # at the end, for the events still held to be answered
    steps: list[StepTiming] = field(default_factory=list)
    initial_catch_up_seconds: float | None = None
    foreign_records: int = 0  # records on the chain's topics from others while the scenario played
    foreign_consumers: dict[str, set[str]] = field(default_factory=dict)  # other groups reading our topics

    @property
    def verified(self) -> bool:
        return self.actual is not None

    @property
    def matches(self) -> bool:
        return (
            self.verified
            and not self.differences
            and self.answers is not None
            and self.answers.matches
            and self.dead_letters is not None
            and self.dead_letters.matches
            and self.holds is not None
            and not self.holds.unresolved
        )

    @property
    def outcome_counts(self) -> Counter[str]:
        return Counter(outcome.kind for outcome in self.outcomes)

    def interference(self) -> str:
        """Why a difference may not be the chain's fault: others wrote to or read from its topics meanwhile."""
        parts = []
        if self.foreign_records:
            parts.append(f"{self.foreign_records} records from other partners or tests reached the chain's topics")
        if self.foreign_consumers:
            parts.append(f"{len(self.foreign_consumers)} other consumer groups also answered this run's records")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.scenario.seed,
            "tag": self.scenario.tag,
            "arrival": self.arrival,
            "enterprises": self.scenario.enterprises,
            "records": len(self.scenario),
            "matches": self.matches,
            "verified": self.verified,
            "outcomes": dict(sorted(self.outcome_counts.items())),
            "model": self.model.to_json(),
            "before": self.before.to_json() if self.before else None,
            "expected": self.expected.to_json() if self.expected else None,
            "actual": self.actual.to_json() if self.actual else None,
            "differences": [d.__dict__ for d in self.differences],
            "answers": self.answers.to_json() if self.answers else None,
            "dead_letters": self.dead_letters.to_json() if self.dead_letters else None,
            "holds": self.holds.to_json() if self.holds else None,
            "held_wait_seconds": self.held_wait_seconds,
            "steps": [{**s.__dict__, "events_per_second": round(s.events_per_second, 1)} for s in self.steps],
            "initial_catch_up_seconds": self.initial_catch_up_seconds,
            "foreign_records": self.foreign_records,
            "foreign_consumers": {group: sorted(topics) for group, topics in self.foreign_consumers.items()},
        }


async def run_simulation(
    kafka: KafkaAccess,
    management_url: str,
    enterprises: int,
    seed: int,
    *,
    token: str,
    tag: str | None = None,
    wait: bool = True,
    timeout: float = 300.0,
    quiet: float = 2.0,
    progress: Progress | None = None,
    database_url: str | None = None,
    arrival: Arrival = ORDERED,
) -> SimulationResult:
    """Play the scenario for (enterprises, seed), its records reaching the chain in the `arrival` order
    (`simulate.arrival`; shuffled by the same seed). With `wait=False` the waves are published back to back and
    nothing is verified: events of different waves then race, and the model no longer predicts them. `token` is
    an operator token management accepts (its report is read over HTTP)."""
    progress = progress or Progress()
    scenario = build_scenario(enterprises, seed, tag)
    stages = arrange([(step.name, step.records) for step in scenario.steps], arrival, seed)
    cast = scenario.partners
    progress.stage(f"provisioning the scenario's {len(cast)} partners (credentials, topics, ACLs)")
    accesses = await provision(kafka, cast)
    async with (
        LagWatcher(kafka, database_url=database_url, topics=[*answer_topics(cast), *chain_topics(cast)]) as watcher,
        Collector(kafka, (*answer_topics(cast), *chain_topics(cast))) as collector,
        Publisher(accesses) as publisher,
    ):

        async def settle() -> float:
            return await watcher.wait(timeout=timeout, quiet=quiet, progress=progress.lag)

        initial = None
        if wait:
            await fetch_report(management_url, token)  # fail fast when management is not there at all
            progress.stage("waiting for the chain to finish what it already holds")
            initial = await settle()
        result = await _predict(kafka, scenario, stages)
        result.arrival, result.stages = arrival, stages
        result.initial_catch_up_seconds = initial
        if wait:
            result.before = await fetch_report(management_url, token)
        for stage in stages:
            progress.publishing(stage.name, len(stage))
            seconds, caught_up = 0.0, None
            for wave in stage.waves:
                seconds += await publisher.publish(wave, progress.sent)
                caught_up = await settle() if wait else None
            progress.published(stage.name, len(stage), seconds)
            if caught_up is not None:
                progress.caught_up(caught_up)
            result.steps.append(StepTiming(stage.name, len(stage), seconds, caught_up))
        if wait:
            progress.stage("waiting for the events still held to be applied, or their wait to expire")
            result.held_wait_seconds = await await_outcomes(collector, scenario.tag, progress=progress.holding)
            await settle()  # what an event applied late made happen downstream
            await collector.read_to_end()
            result.actual = await fetch_report(management_url, token)
    if wait:
        _verify(result, collector)
    return result


async def _predict(kafka: KafkaAccess, scenario: Scenario, stages: list[Stage]) -> SimulationResult:
    """The model's expectations, given the records in the order they are published. It first takes in the
    subscriptions the chain already holds (from the history of the communication ingest topics, which earlier runs
    and other partners wrote to), as notices go to them too."""
    model = ChainModel()
    for sent in await read_history(kafka, await communication_topics(kafka)):  # the first owner of an id wins
        model.apply(sent)
    published = [sent for stage in stages for wave in stage.waves for sent in wave]
    first = len(model.outcomes)
    outcomes = model.apply_all(published)[first:]
    by_record = dict(zip(map(id, published), outcomes, strict=True))
    return SimulationResult(scenario, [by_record[id(sent)] for sent in scenario.records()], model.report())


def _verify(result: SimulationResult, collector: Collector) -> None:
    assert result.before is not None
    assert result.actual is not None
    scenario = result.scenario
    result.expected = result.before.plus(result.model)
    result.differences = report_differences(result.expected, result.actual)
    result.foreign_records = foreign_records(collector.records, scenario.tag)
    result.foreign_consumers = foreign_consumers(collector.records, scenario.tag)
    expected_answers = [answer for outcome in result.outcomes for answer in outcome.answers]
    seen_answers = answers_seen(collector.records, scenario.tag, scenario.partners)
    result.answers = tally(expected_answers, seen_answers, distinct=True, theirs=_read_by_others(result))
    expected_letters = [o.dead_letter for o in result.outcomes if o.dead_letter]
    result.dead_letters = tally(expected_letters, dead_letters_seen(collector.records, scenario.tag))
    result.holds = holds_seen(collector.records, scenario.tag)


def _read_by_others(result: SimulationResult) -> Callable[[Answer | DeadLetter], bool]:
    """Whether an answer is about a record of a topic that another consumer group read too (a test instance of
    a service, say): feedback does not say which consumer wrote it."""
    topics = set().union(*result.foreign_consumers.values())
    topic_of = {sent.event_id: sent.topic for sent in result.scenario.records() if sent.event_id}

    def theirs(item: Answer | DeadLetter) -> bool:
        if not isinstance(item, Answer):
            return False
        orders = ingest_topic("marketing", item.partner) if item.kind.startswith("order.") else ""
        return topic_of.get(item.subject, orders) in topics

    return theirs
