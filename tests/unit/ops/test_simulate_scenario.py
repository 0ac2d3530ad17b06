"""The simulation's scenario: the same seed gives the same records, it exercises every bad record and every rule,
what it means to happen is what the model predicts, and no outcome depends on how keys race within a step."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path

import pytest

from fivecogs_ops.simulate.model import ChainModel
from fivecogs_ops.simulate.play import waves
from fivecogs_ops.simulate.records import Sent
from fivecogs_ops.simulate.scenario import Scenario, build_scenario
from fivecogs_shared.contracts import ingest_topic
from fivecogs_shared.provinces import TARGET_PROVINCES

RULES_DOC = Path(__file__).resolve().parents[3] / "docs" / "rules.md"
BAD_KINDS = {"malformed", "schema", "unknown_type", "conflict", "oversized"}
CHANNELS = {"local_market", "pracharat_market", "otop_trader", "online", "retail", "tourism"}


def documented_rules() -> set[str]:
    """Every rule docs/rules.md names after an arrow, e.g. "→ `batch_closed`"."""
    return set(re.findall(r"→\s+`([a-z_]+)`", RULES_DOC.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(enterprises=12, seed=2026, tag="run-2026-test")


def _fingerprint(scenario: Scenario) -> list[tuple[str, bytes | None, bytes, tuple[tuple[str, bytes], ...]]]:
    return [(s.topic, s.key, s.value, s.headers) for s in scenario.records()]


def test_a_seed_and_a_tag_always_give_the_same_records(scenario: Scenario) -> None:
    again = build_scenario(enterprises=12, seed=2026, tag="run-2026-test")
    assert _fingerprint(again) == _fingerprint(scenario)
    assert _fingerprint(build_scenario(enterprises=12, seed=2027, tag="run-2026-test")) != _fingerprint(scenario)


def test_another_tag_gives_the_same_story_under_other_ids(scenario: Scenario) -> None:
    other = build_scenario(enterprises=12, seed=2026, tag="run-2026-other")
    assert [s.value.replace(b"run-2026-other", b"run-2026-test") for s in other.records()] == [
        s.value for s in scenario.records()
    ]
    assert build_scenario(12, 2026).tag != build_scenario(12, 2026).tag  # a fresh tag per run by default


def test_every_id_carries_the_run_tag(scenario: Scenario) -> None:
    # The exceptions are chosen to be shared: provinces (policies) and the twelve fixed subscribers.
    shared = set(TARGET_PROVINCES) | {f"sim-subscriber-{n:02d}" for n in range(1, 13)}
    for sent in scenario.records():
        key = (sent.key or b"").decode()
        assert sent.event_id.startswith(scenario.tag) or (not sent.event_id and key.startswith(scenario.tag))
        assert key.startswith(scenario.tag) or key in shared or sent.intent == "schema", sent.note


def test_it_holds_every_bad_record_and_breaks_every_rule(scenario: Scenario) -> None:
    kinds = {outcome.kind for outcome in ChainModel().apply_all(scenario.records())}
    assert kinds >= BAD_KINDS | {"duplicate", "accepted"}
    assert {kind.removeprefix("rule:") for kind in kinds if kind.startswith("rule:")} == documented_rules()


@pytest.mark.parametrize(("enterprises", "seed"), [(3, 1), (4, 9), (7, 3), (12, 2026), (12, 7), (40, 11)])
def test_the_model_predicts_what_the_scenario_means(enterprises: int, seed: int) -> None:
    scenario = build_scenario(enterprises, seed, tag="t")
    outcomes = ChainModel().apply_all(scenario.records())
    wrong = [
        (s.note, s.intent, o.kind) for s, o in zip(scenario.records(), outcomes, strict=True) if s.intent != o.kind
    ]
    assert wrong == []


def test_it_plays_the_programme_across_provinces_sectors_and_channels(scenario: Scenario) -> None:
    data_of = [(s.ce_type.split(".")[2], s.data()) for s in scenario.records() if s.intent == "accepted"]
    policies = {d["province"] for kind, d in data_of if kind == "distribution"}
    assert policies == set(TARGET_PROVINCES)
    shares = {
        (d["members_share"], d["community_fund_share"], d["reinvest_share"])
        for kind, d in data_of
        if kind == "distribution"
    }
    assert ("0.60", "0.30", "0.10") in shares
    assert len(shares) >= 3
    subscribers = {d["subscriber_id"] for kind, d in data_of if kind == "subscription"}
    assert subscribers == {f"sim-subscriber-{n:02d}" for n in range(1, 13)}
    enterprises = [d for kind, d in data_of if kind == "enterprise"]
    assert {d["sector"] for d in enterprises} == {"agriculture", "processing", "community_tourism"}
    assert {"Nakhon Si Thammarat", "Nakhon Ratchasima", "Phetchaburi", "Phitsanulok"} <= {
        d["province"] for d in enterprises
    }
    assert {d["channel"] for kind, d in data_of if kind == "listing"} == CHANNELS
    orders = [d for kind, d in data_of if kind == "order"]
    assert any(len(d["lines"]) > 1 for d in orders)
    assert {d["scheme"] for kind, d in data_of if kind == "certification"} >= {"otop_stars", "tcps", "cbt_standard"}
    assert len(scenario.partners) >= 10
    assert all(sent.topic == ingest_topic(sent.topic.split(".")[1], sent.partner) for sent in scenario.records())
    produced = {s.ce_type for s in scenario.records() if "batch.produced" in s.ce_type and s.intent == "accepted"}
    assert produced == {"th.fivecogs.batch.produced.v1", "th.fivecogs.batch.produced.v2"}


@pytest.mark.parametrize(("enterprises", "seed"), [(3, 3), (12, 2026), (12, 1), (20, 7), (40, 3)])
def test_sales_include_one_below_cost_and_one_at_cost(enterprises: int, seed: int) -> None:
    model = ChainModel()
    model.apply_all(build_scenario(enterprises, seed, tag="t").records())
    margins = []
    for order in model.chain.orders.values():
        if order.status == "paid":
            for enterprise in {line.enterprise_id for line in order.lines}:
                lines = [line for line in order.lines if line.enterprise_id == enterprise]
                revenue = sum(line.price * line.quantity for line in lines)
                margins.append(revenue - sum(p.cost for line in lines for p in line.portions))
    assert any(m < 0 for m in margins)
    assert any(m == 0 for m in margins)
    assert sum(m > 0 for m in margins) > len(margins) / 2


def _interleaved(records: tuple[Sent, ...], rng: random.Random) -> list[Sent]:
    """The records in another order that partitioned logs allow: each key of each partner's topic keeps its own
    order."""
    streams: dict[tuple[str, bytes | None], list[Sent]] = defaultdict(list)
    for sent in records:
        streams[(sent.topic, sent.key)].append(sent)
    queues, shuffled = [list(stream) for stream in streams.values()], []
    while queues:
        queue = rng.choice(queues)
        shuffled.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return shuffled


@pytest.mark.parametrize(("enterprises", "seed"), [(5, 1), (12, 2026)])
def test_no_outcome_depends_on_how_keys_race_within_a_step(enterprises: int, seed: int) -> None:
    scenario = build_scenario(enterprises, seed, tag="t")
    straight = ChainModel()
    expected = dict(zip(map(id, scenario.records()), straight.apply_all(scenario.records()), strict=True))
    for trial in range(8):
        rng, raced, played = random.Random(trial), ChainModel(), []
        for step in scenario.steps:
            for wave in waves(step.records):  # the chain takes each wave in before the next
                played += _interleaved(tuple(wave), rng)
        got = dict(zip(map(id, played), raced.apply_all(played), strict=True))
        assert [s.note for s in scenario.records() if got[id(s)] != expected[id(s)]] == []
        assert raced.report() == straight.report()


def test_the_race_check_would_notice_a_race() -> None:
    scenario = build_scenario(12, 2026, tag="t")
    # Deliveries with the batches that do not name them, in one wave: some come too late and are batch_closed.
    played = [*scenario.steps[0].records, *scenario.steps[1].records]
    expected = ChainModel().apply_all(played)
    differing = 0
    for trial in range(5):
        raced = [*scenario.steps[0].records, *_interleaved(scenario.steps[1].records, random.Random(trial))]
        got = dict(zip(map(id, raced), ChainModel().apply_all(raced), strict=True))
        differing += sum(got[id(sent)] != outcome for sent, outcome in zip(played, expected, strict=True))
    assert differing > 0


def test_too_few_enterprises_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        build_scenario(enterprises=2, seed=1)
