"""The arrival orders: ordered plays the steps as written; shuffled is a seeded random merge, block by block, that
keeps each topic's order and the pairs the arrival rules need, really sends references after what refers to them,
and in which no outcome depends on how the records of one wave race."""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from fivecogs_ops.faults.plan import SHORT
from fivecogs_ops.faults.workload import build_workload
from fivecogs_ops.simulate.arrival import AHEAD, ORDERED, SHUFFLED, Stage, arrange, cut, ordered, shuffled
from fivecogs_ops.simulate.intake import Reading, read
from fivecogs_ops.simulate.model import HELD, ChainModel
from fivecogs_ops.simulate.play import waves
from fivecogs_ops.simulate.records import Sent
from fivecogs_ops.simulate.scenario import Scenario, build_scenario

# A scenario of the size `fivecogs simulate` plays whose shuffle sends every kind of reference late.
ENTERPRISES, SEED = 12, 15
CERTIFIED_CHANNELS = ("otop_trader", "online", "retail", "tourism")


def _steps(scenario: Scenario) -> list[tuple[str, tuple[Sent, ...]]]:
    return [(step.name, step.records) for step in scenario.steps]


def _published(stages: list[Stage]) -> list[Sent]:
    return [sent for stage in stages for wave in stage.waves for sent in wave]


def _wave_of(stages: list[Stage]) -> dict[int, int]:
    """id(record) -> the number of its wave, over the whole run."""
    found: dict[int, int] = {}
    number = 0
    for stage in stages:
        for wave in stage.waves:
            found |= {id(sent): number for sent in wave}
            number += 1
    return found


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(ENTERPRISES, SEED, tag="t")


@pytest.fixture(scope="module")
def stages(scenario: Scenario) -> list[Stage]:
    return shuffled(_steps(scenario), SEED)


def test_ordered_is_the_steps_as_written_in_their_waves(scenario: Scenario) -> None:
    stages = arrange(_steps(scenario), ORDERED, SEED)
    assert [stage.name for stage in stages] == [step.name for step in scenario.steps]
    assert [list(stage.waves) for stage in stages] == [[tuple(w) for w in waves(s.records)] for s in scenario.steps]


def test_the_same_seed_gives_the_same_arrival(scenario: Scenario, stages: list[Stage]) -> None:
    again = arrange(_steps(build_scenario(ENTERPRISES, SEED, tag="t")), SHUFFLED, SEED)
    assert [(s.topic, s.value) for s in _published(again)] == [(s.topic, s.value) for s in _published(stages)]
    other = shuffled(_steps(scenario), SEED + 1)
    assert [id(s) for s in _published(other)] != [id(s) for s in _published(stages)]
    assert Counter(map(id, _published(other))) == Counter(map(id, scenario.records()))  # each record once


def test_each_topic_keeps_its_order(scenario: Scenario, stages: list[Stage]) -> None:
    def by_topic(records: Iterable[Sent]) -> dict[str, list[int]]:
        found: dict[str, list[int]] = defaultdict(list)
        for sent in records:
            found[sent.topic].append(id(sent))
        return found

    assert by_topic(_published(stages)) == by_topic(scenario.records())


def test_blocks_cut_every_step_boundary_and_hold_at_most_a_block() -> None:
    steps = [(f"{n} step", tuple(range(size))) for n, size in enumerate((150, 771, 280, 371, 71, 61), 1)]
    blocks = cut(steps, 300)  # type: ignore[arg-type]
    assert blocks[0][0] == 0
    assert blocks[-1][1] == 1704
    assert all(low < high <= low + 300 for low, high in blocks)
    assert all(one[1] == other[0] for one, other in itertools.pairwise(blocks))
    cuts = {low for low, _ in blocks}
    assert not cuts & {150, 921, 1201, 1572, 1643}  # no step boundary between two blocks


@dataclass(frozen=True)
class Event:
    """A published event, as the checks read it."""

    at: int  # position in publishing order
    written: int  # position in the scenario as written
    wave: int
    sent: Sent
    kind: str  # "enterprise", "input", "batch", "order", "order-cancelled", "payment"...
    data: dict[str, Any]

    def products(self, orders: dict[str, set[str]]) -> set[str]:
        if self.kind == "order":
            return {line["product_id"] for line in self.data["lines"]}
        return orders.get(self.data.get("order_id", ""), set())


@pytest.fixture(scope="module")
def events(scenario: Scenario, stages: list[Stage]) -> list[Event]:
    written = {id(sent): at for at, sent in enumerate(scenario.records())}
    wave = _wave_of(stages)
    found = []
    for at, sent in enumerate(_published(stages)):
        reading = read(sent)
        if isinstance(reading, Reading):
            kind = reading.ce_type.split(".")[2] + ("-cancelled" if "cancelled" in reading.ce_type else "")
            found.append(Event(at, written[id(sent)], wave[id(sent)], sent, kind, reading.data.model_dump()))
    return found


def _out_of_order(events: list[Event], kept: Callable[[Event, Event], bool]) -> tuple[int, list[str]]:
    """The pairs (written first, written second) the rule keeps: how many, and those not published in that order
    or, across partitions, in the same wave."""
    checked, wrong = 0, []
    by_writing = sorted(events, key=lambda e: e.written)
    for i, before in enumerate(by_writing):
        for later in by_writing[i + 1 :]:
            if kept(before, later):
                checked += 1
                same = (before.sent.topic, before.sent.key) == (later.sent.topic, later.sent.key)
                if not (before.wave < later.wave or (same and before.at < later.at)):
                    wrong.append(f"{before.sent.note or before.kind} / {later.sent.note or later.kind}")
    return checked, wrong


def test_the_pairs_the_arrival_rules_need_stay_in_order(events: list[Event]) -> None:
    orders = {e.data["order_id"]: e.products({}) for e in events if e.kind == "order"}
    first_listing: dict[tuple[str, str], int] = {}
    for e in sorted(events, key=lambda e: e.written):
        if e.kind == "listing":
            first_listing.setdefault((e.data["product_id"], e.data["channel"]), e.written)

    def same(*fields: str) -> Callable[[Event, Event], bool]:
        return lambda a, b: all(a.data.get(f) == b.data.get(f) for f in fields)

    def unnamed(a: Event, b: Event) -> bool:
        if {a.kind, b.kind} != {"input", "batch"} or not same("batch_id")(a, b):
            return False
        batch, delivery = (a, b) if a.kind == "batch" else (b, a)
        return delivery.data["delivery_id"] not in (batch.data.get("delivery_ids") or ())

    def replacing(a: Event, b: Event) -> bool:
        key = (str(a.data.get("product_id")), str(a.data.get("channel")))
        return (
            a.kind == "listing"
            and b.kind == "order"
            and first_listing[key] != a.written
            and b.data["channel"] == a.data["channel"]
            and a.data["product_id"] in b.products(orders)
        )

    stock_kinds, paying_kinds = ("order", "order-cancelled"), ("payment", "order-cancelled")
    rules: dict[str, Callable[[Event, Event], bool]] = {
        "registrations of one enterprise": lambda a, b: (
            a.kind == b.kind == "enterprise" and same("enterprise_id")(a, b)
        ),
        "a batch and the deliveries it does not name": unnamed,
        "subscriptions before what publishes notices": lambda a, b: (
            a.kind == "subscription" and b.kind in ("certification", "listing", "payment")
        ),
        "a listing replacing a price before the orders on it": replacing,
        "orders and cancellations sharing a product": lambda a, b: (
            a.kind in stock_kinds and b.kind in stock_kinds and bool(a.products(orders) & b.products(orders))
        ),
        "a product's batches before its orders": lambda a, b: (
            a.kind == "batch" and b.kind == "order" and a.data["product_id"] in b.products(orders)
        ),
        "payments and cancellations of one order": lambda a, b: (
            a.kind in paying_kinds and b.kind in paying_kinds and same("order_id")(a, b)
        ),
    }
    for name, rule in rules.items():
        checked, wrong = _out_of_order(events, rule)
        assert checked > 0, name
        assert wrong == [], name


def test_references_really_arrive_after_what_refers_to_them(events: list[Event]) -> None:
    def key(e: Event) -> tuple[str, ...] | None:
        d = e.data
        return {
            "enterprise": ("enterprise", d.get("enterprise_id", "")),
            "input": ("delivery", d.get("batch_id", ""), d.get("delivery_id", "")),
            "batch": ("product", d.get("enterprise_id", ""), d.get("product_id", "")),
            "certification": ("certified", d.get("product_id", "")),
            "listing": ("listed", d.get("channel", ""), d.get("product_id", "")),
            "order": ("order", d.get("order_id", "")),
        }.get(e.kind)

    first: dict[tuple[str, ...], int] = {}
    for e in events:
        if e.sent.intent == "accepted" and (found := key(e)):
            first.setdefault(found, e.at)
    late: Counter[str] = Counter()
    for e in events:
        d = e.data

        def before(*reference: str, e: Event = e) -> bool:
            return first.get(reference, -1) > e.at

        if e.kind == "input" and before("enterprise", d["enterprise_id"]):
            late["a delivery before its enterprise's registration"] += 1
        if e.kind == "batch" and any(before("delivery", d["batch_id"], n) for n in d.get("delivery_ids") or ()):
            late["a batch before a delivery it names"] += 1
        if e.kind == "certification" and before("product", d["enterprise_id"], d["product_id"]):
            late["a certification before its product's batch"] += 1
        if e.kind == "listing" and before("product", d["enterprise_id"], d["product_id"]):
            late["a listing before its product's batch"] += 1
        if e.kind == "listing" and d["channel"] in CERTIFIED_CHANNELS and before("certified", d["product_id"]):
            late["a listing before the certification it needs"] += 1
        if e.kind == "order" and any(before("listed", d["channel"], line["product_id"]) for line in d["lines"]):
            late["an order before its listing"] += 1
        if e.kind == "payment" and before("order", d["order_id"]):
            late["a payment before its order"] += 1
    assert set(late) == {
        "a delivery before its enterprise's registration",
        "a batch before a delivery it names",
        "a certification before its product's batch",
        "a listing before its product's batch",
        "a listing before the certification it needs",
        "an order before its listing",
        "a payment before its order",
    }, late


def test_what_is_held_waits_for_something_of_its_own_block_a_wave_or_two_later(
    scenario: Scenario, stages: list[Stage]
) -> None:
    """At the end of each block only what never comes still waits (the scenario's deliberate dangling
    references, rejected when their wait expires); the rest is let go at most `AHEAD` waves after it came."""
    published, model = _published(stages), ChainModel()
    came: dict[int, int] = {}  # held record -> the wave it came in
    waited: Counter[int] = Counter()  # waves until it was let go
    number = 0
    for stage in stages:
        for wave in stage.waves:
            for sent in wave:
                if model.apply(sent).kind == HELD:
                    came[len(model.outcomes) - 1] = number
            for index in [i for i in came if model.outcomes[i] is not None]:
                waited[number - came.pop(index)] += 1
            number += 1
        assert [published[i].note for i in came if published[i].intent == "accepted"] == [], stage.name
    assert max(waited) <= AHEAD
    assert sum(waited.values()) >= 30


def _interleaved(records: Iterable[Sent], rng: random.Random) -> list[Sent]:
    """The records in another order the partitions allow: each key of each topic keeps its own order."""
    streams: dict[tuple[str, bytes | None], list[Sent]] = defaultdict(list)
    for sent in records:
        streams[(sent.topic, sent.key)].append(sent)
    queues, raced = [list(stream) for stream in streams.values()], []
    while queues:
        queue = rng.choice(queues)
        raced.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return raced


def _race(stages: list[Stage], trials: int) -> list[str]:
    published = _published(stages)
    straight = ChainModel()
    expected = dict(zip(map(id, published), straight.apply_all(published), strict=True))
    found = []
    for trial in range(trials):
        rng, raced = random.Random(trial), []
        for stage in stages:
            for wave in stage.waves:  # the chain takes each wave in before the next
                raced += _interleaved(wave, rng)
        model = ChainModel()
        got = dict(zip(map(id, raced), model.apply_all(raced), strict=True))
        found += [f"{trial}: {s.note or s.ce_type}" for s in published if got[id(s)] != expected[id(s)]]
        if model.report() != straight.report():
            found.append(f"{trial}: the report")
    return found


@pytest.mark.parametrize(("enterprises", "seed"), [(5, 1), (12, 2026), (ENTERPRISES, SEED), (40, 7)])
def test_no_outcome_depends_on_how_the_records_of_a_wave_race(enterprises: int, seed: int) -> None:
    stages = shuffled(_steps(build_scenario(enterprises, seed, tag="t")), seed)
    assert _race(stages, trials=6) == []


def test_shuffled_outcomes_and_report_are_those_of_the_written_order(scenario: Scenario, stages: list[Stage]) -> None:
    written = ChainModel()
    expected = dict(zip(map(id, scenario.records()), written.apply_all(scenario.records()), strict=True))
    shuffled_model = ChainModel()
    published = _published(stages)
    got = dict(zip(map(id, published), shuffled_model.apply_all(published), strict=True))
    assert [s.note for s in scenario.records() if got[id(s)] != expected[id(s)]] == []
    assert shuffled_model.report() == written.report()


def test_the_fault_suite_shuffles_its_poisoned_workload_with_its_copies() -> None:
    workload = build_workload(SHORT.events, 4, SHORT.copy_delay_events, tag="t", arrival=SHUFFLED, block=SHORT.block)
    ordered_workload = build_workload(SHORT.events, 4, SHORT.copy_delay_events, tag="t")
    assert workload.sent == ordered_workload.sent == 2 * workload.events
    assert workload.waves[0].name.startswith("block 1/")

    def published(records: Iterable[Sent]) -> Counter[tuple[str, bytes]]:
        return Counter((sent.topic, sent.value) for sent in records)

    assert published(workload.records()) == published(ordered_workload.records())
    ordered_outcomes = Counter(o.kind for o in ChainModel().apply_all(ordered_workload.records()))
    assert Counter(o.kind for o in ChainModel().apply_all(workload.records())) == ordered_outcomes


def test_an_unknown_arrival_is_refused(scenario: Scenario) -> None:
    with pytest.raises(ValueError, match="ordered, shuffled"):
        arrange(_steps(scenario), "backwards", SEED)  # type: ignore[arg-type]
    assert ordered([]) == []
