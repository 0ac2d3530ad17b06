"""The fault suite's own parts, without a stack: what it publishes (poison of every kind, every event twice),
which faults it plans, and the check that catches a relay re-sending out of order or skipping a record."""

from __future__ import annotations

from collections import Counter

import pytest

from fivecogs_ops.faults import poison
from fivecogs_ops.faults.plan import FULL, KILL, KINDS, RELAY, SHORT, WHOLE_CHAIN, Mode, plan_faults
from fivecogs_ops.faults.verify import _runs
from fivecogs_ops.faults.workload import HOLD_EVERY, Workload, build_workload
from fivecogs_ops.simulate.intake import read
from fivecogs_ops.simulate.model import ChainModel
from fivecogs_shared.contracts import COGS


@pytest.fixture(scope="module")
def workload() -> Workload:
    return build_workload(events=1500, seed=11, copy_delay=200, tag="run-11-test")


def test_the_scenario_reaches_the_size_asked_for(workload: Workload) -> None:
    assert workload.events >= 1500
    assert workload.events < 1500 * 1.1  # and not much more


def test_every_event_is_published_twice_the_copy_later(workload: Workload) -> None:
    stream = [published for wave in workload.waves for published in wave.records]
    firsts = [p for p in stream if p.first is None]
    copies = [(position, p) for position, p in enumerate(stream) if p.first is not None]
    assert len(firsts) == workload.events
    assert len(copies) == workload.events
    assert workload.sent == 2 * workload.events
    for position, copy in copies:
        assert copy.first is not None
        assert copy.first < position
        assert stream[copy.first].sent == copy.sent


def test_some_copies_come_as_late_as_the_stream_allows(workload: Workload) -> None:
    stream = [published for wave in workload.waves for published in wave.records]
    tail = stream[-workload.events // HOLD_EVERY :]
    assert all(p.first is not None for p in tail)
    # the held copies are those of events from the very start: the widest gaps the run can have
    assert min(p.first for p in tail if p.first is not None) == 0
    assert sum(1 for p in tail if p.first is not None and p.first < len(stream) // 4) >= len(tail) // 5


def test_over_a_tenth_of_the_events_are_poison_of_every_kind(workload: Workload) -> None:
    assert set(workload.poison) == set(poison.KINDS)
    assert sum(workload.poison.values()) / workload.events > 0.10
    assert min(workload.poison.values()) >= max(workload.poison.values()) - 1  # the kinds in turn


def test_each_poison_record_fails_the_way_it_claims(workload: Workload) -> None:
    outcomes = Counter(outcome.kind for outcome in ChainModel().apply_all(workload.records()))
    for kind, dead_letter_kind in poison.KINDS.items():
        # both copies of every twin are dead-lettered (the scenario's own mischief adds some of each)
        assert outcomes[dead_letter_kind] >= 2 * workload.poison[kind]


def test_a_conflicting_twin_follows_its_original_on_the_same_key(workload: Workload) -> None:
    records = list(workload.records())
    conflicts = [i for i, sent in enumerate(records) if sent.note.startswith("poison: an event id reused")]
    assert conflicts
    for i in conflicts:
        original = next(s for s in records[:i] if s.event_id == records[i].event_id)
        assert (original.topic, original.key) == (records[i].topic, records[i].key)
        assert original.value != records[i].value


def test_a_twin_that_is_not_what_it_claims_is_refused() -> None:
    workload = build_workload(events=200, seed=3, copy_delay=50, tag="run-3-test")
    good = next(sent for sent in workload.records() if poison.can_template(sent))
    assert read(poison.make("schema", good, "run-3-test-pz1", 0)) == "schema"
    with pytest.raises(AssertionError):
        poison._check("oversized", good, good)  # an ordinary record is not oversized


@pytest.mark.parametrize("mode", [SHORT, FULL], ids=["short", "full"])
def test_the_plan_kills_every_service_and_has_every_fault(mode: Mode) -> None:
    faults = plan_faults(mode, sent=4000, seed=4)
    kinds = Counter(fault.kind for fault in faults)
    assert set(kinds) == set(KINDS)
    assert kinds[KILL] >= 5
    assert {fault.target for fault in faults if fault.kind == KILL} == set(COGS)
    assert all(fault.target == WHOLE_CHAIN for fault in faults if fault.kind in ("broker restart", "postgres restart"))
    assert all(fault.target == "" for fault in faults if fault.kind == RELAY)  # the busiest, when it strikes
    positions = [fault.at for fault in faults]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert positions[0] > 0
    assert positions[-1] < 4000


def test_the_plan_is_the_seeds() -> None:
    assert plan_faults(SHORT, 4000, 4) == plan_faults(SHORT, 4000, 4)
    assert plan_faults(SHORT, 4000, 4) != plan_faults(SHORT, 4000, 5)


def test_a_relay_that_sends_again_in_order_passes() -> None:
    # rows a b c d, crash after b and c were acked but not deleted, then b c again and on
    assert _runs(list("abcbcde")) == (2, [])
    assert _runs(list("abcabcd")) == (3, [])


def test_a_relay_that_skips_or_reorders_is_caught() -> None:
    again, jumps = _runs(list("abcacd"))  # after the crash it re-sent a but not b before c... then d
    assert again == 2
    assert jumps == ["offset 4: record #2 follows #0"]
    assert _runs(list("abdc"))[1] == []  # first appearance defines the order: a swap is invisible here
    assert _runs(list("abcbd"))[1] == ["offset 4: record #3 follows #1"]  # c never re-sent before d
