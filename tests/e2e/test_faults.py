"""The fault suite, shortened (`fivecogs faults --short`): about 2,000 partner events, each sent twice, with
poison of every kind, played on a stack of the suite's own (.stack/faults, other ports) while every service is
killed with -9 mid-batch, Kafka and Postgres are restarted, an outbox relay dies between publishing and
deleting, a consumer group is rewound to 0 and a second instance joins and dies. The report must then equal
the model exactly, and every fault must have been injected and recovered from."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter

import pytest

from fivecogs_ops.faults import SHORT
from fivecogs_ops.faults.environment import FaultEnvironment
from fivecogs_ops.faults.plan import BROKER, KILL, KINDS, POSTGRES, RELAY
from fivecogs_ops.faults.progress import SuiteProgress
from fivecogs_ops.faults.runner import SHUTDOWN_LIMIT, SuiteResult, run_suite
from fivecogs_shared.contracts import COGS

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (shutil.which("java") and shutil.which("mvn")), reason="the suite's stack needs Java"),
]

SEED = 4


class Printed(SuiteProgress):
    """Progress in the test log (pytest -s shows it live)."""

    def stage(self, text: str) -> None:
        print(f"[faults] {text}")

    def settled(self, name: str, publish_seconds: float, catch_up_seconds: float) -> None:
        print(f"[faults] {name}: published {publish_seconds:.1f}s, caught up {catch_up_seconds:.1f}s later")


@pytest.fixture(scope="module")
def suite() -> SuiteResult:
    env = FaultEnvironment()
    try:
        result = asyncio.run(run_suite(env, SHORT, SEED, Printed()))
    finally:
        env.close(progress=lambda line: print(f"[faults] {line}"))
    print(f"[faults] {result.seconds:.0f}s; problems: {result.problems() or 'none'}")
    return result


def test_the_suite_ran_to_its_verdict(suite: SuiteResult) -> None:
    assert suite.error is None
    assert suite.verdict is not None


def test_the_report_equals_the_model_exactly(suite: SuiteResult) -> None:
    assert suite.verdict is not None
    differences = [
        f"{d.table} {d.name} {d.field}: expected {d.expected}, got {d.actual}" for d in suite.verdict.differences
    ]
    assert differences == []
    assert suite.verdict.effective_actual == suite.verdict.effective_expected > 1000


def test_nothing_is_lost_or_applied_twice(suite: SuiteResult) -> None:
    verdict = suite.verdict
    assert verdict is not None
    assert verdict.not_taken_in == []  # every event a service handles is in its inbox
    assert verdict.outbox_left == 0  # every committed event was relayed
    assert verdict.answers.missing == ()
    assert verdict.answers.unexpected == ()
    assert verdict.mismatches == 0


def test_every_fault_was_injected_and_recovered_from(suite: SuiteResult) -> None:
    failed = [f"{r.fault.kind} {r.target}: {r.error or 'not injected'}" for r in suite.faults if not r.ok]
    assert failed == []
    assert len(suite.faults) == len(suite.planned)
    kinds = Counter(record.fault.kind for record in suite.faults)
    assert set(kinds) == set(KINDS)
    assert kinds[KILL] >= 5
    assert {r.target for r in suite.faults if r.fault.kind == KILL} == set(COGS)
    assert kinds[BROKER] >= 1
    assert kinds[POSTGRES] >= 1
    assert any("mid-transaction" in r.detail for r in suite.faults if r.fault.kind == KILL)
    assert suite.crashes == []  # no service died other than by a fault


def test_poison_is_dead_lettered_with_its_reason_and_reported(suite: SuiteResult) -> None:
    verdict = suite.verdict
    assert verdict is not None
    assert sum(suite.workload.poison.values()) / suite.workload.events >= 0.10
    assert verdict.dead_letters.missing == ()
    assert verdict.dead_letters.unexpected == ()
    assert verdict.dead_letters.seen >= 2 * sum(suite.workload.poison.values())  # both copies of every twin


def test_duplicates_have_no_second_effect(suite: SuiteResult) -> None:
    assert suite.workload.sent == 2 * suite.workload.events
    assert min(suite.copy_gaps) > 1.0  # the copy came later, not in the same breath
    assert suite.duplicates_absorbed >= suite.workload.events // 2


def test_a_crashed_relay_resends_in_order_and_skips_nothing(suite: SuiteResult) -> None:
    verdict = suite.verdict
    assert verdict is not None
    assert [r for r in suite.faults if r.fault.kind == RELAY and r.injected]
    assert verdict.resent > 0  # the crash happened between Kafka's ack and the DELETE
    assert verdict.order_violations == []


def test_sigterm_stops_every_service_within_ten_seconds(suite: SuiteResult) -> None:
    stops = suite.stop_times()
    assert len(stops) >= len(COGS)
    assert max(stops.values()) <= SHUTDOWN_LIMIT
