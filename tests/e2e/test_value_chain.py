"""The whole value chain, end to end: the five services as separate processes on the real broker and database,
a seeded scenario played on them, and every figure, answer and dead letter compared with the simulation's
independent model of docs/rules.md. The scenario is played twice: as written, and shuffled (records before what
they refer to, held by the services until it comes: tests/unit/ops/test_simulate_arrival.py shows this seed
sends every kind of reference late).

The services use their default consumer groups and schemas, which may already hold earlier runs: the report
is compared as a delta (before + model = after), and every id carries this run's tag.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fivecogs_ops.services import ServiceProcesses
from fivecogs_ops.simulate import SimulationResult, run_simulation
from fivecogs_ops.simulate.arrival import ORDERED, SHUFFLED, Arrival
from fivecogs_ops.simulate.holds import HOLD_SECONDS, hold_env
from fivecogs_shared.contracts import COGS
from tests.support import operator_token

pytestmark = pytest.mark.e2e

ENTERPRISES = 12
SEEDS: dict[Arrival, int] = {ORDERED: 2026, SHUFFLED: 15}
ATTEMPTS = 3
RULES_DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def documented_rules() -> set[str]:
    """The rule names docs/rules.md gives after an arrow, e.g. "→ `batch_closed`"."""
    return set(re.findall(r"→\s+`([a-z_]+)`", RULES_DOC.read_text(encoding="utf-8")))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def services(stack_env, tmp_path_factory) -> Iterator[ServiceProcesses]:
    # Free ports, so a developer's `make run` on the default ports does not answer in our place.
    env = {
        **stack_env.as_env(),
        **{f"FIVECOGS_{cog.upper()}_RELAY_POLL_SECONDS": "0.2" for cog in COGS},
        **hold_env(),  # the scenario's dangling references are rejected within the run
    }
    processes = ServiceProcesses(
        env=env,
        log_dir=Path(tmp_path_factory.mktemp("e2e-logs")),
        ports={cog: _free_port() for cog in COGS},
        kafka=stack_env.service_kafka(),
        operator_token=operator_token(),
    )
    try:
        for cog in COGS:
            processes.start(cog)
        processes.wait_ready(COGS, timeout=120)
        yield processes
    finally:
        processes.stop_all()


# Shuffled only: it makes every check the ordered play makes, and more (the fault suite plays ordered, under faults).
@pytest.fixture(scope="module", params=[SHUFFLED])
async def played(request, stack_env, services: ServiceProcesses) -> SimulationResult:
    """One run per arrival order; played again (under a new tag) only when it differs while others were writing
    to or reading the same topics, as on a developer's shared stack. A clean stack gets exactly one run each."""
    arrival: Arrival = request.param
    for attempt in range(1, ATTEMPTS + 1):
        result = await asyncio.wait_for(
            run_simulation(
                stack_env.kafka,
                services.url("management"),
                ENTERPRISES,
                SEEDS[arrival],
                token=services.operator_token,
                timeout=120,
                database_url=stack_env.database_url,
                arrival=arrival,
            ),
            timeout=200 + 2 * HOLD_SECONDS,  # the last answers come a hold after the last record
        )
        settled = ", ".join(f"{s.name.split()[0]} {s.catch_up_seconds or 0:.1f}s" for s in result.steps)
        holds = result.holds.to_json() if result.holds else None
        print(
            f"{arrival} attempt {attempt}: {len(result.scenario)} records, matches={result.matches}; "
            f"caught up: {settled}; held: {holds}; last answer {result.held_wait_seconds or 0:.0f}s after the end"
        )
        if result.matches or not result.interference():
            break
    return result


async def test_the_scenario_covers_every_rule_and_every_bad_record(played: SimulationResult) -> None:
    kinds = played.outcome_counts
    for kind in ("malformed", "schema", "unknown_type", "conflict", "oversized", "duplicate"):
        assert kinds[kind] >= 1, kind
    assert {kind.removeprefix("rule:") for kind in kinds if kind.startswith("rule:")} == documented_rules()


def _why(played: SimulationResult) -> str:
    interference = played.interference()
    return f"\n(while it played, {interference})" if interference else ""


async def test_the_report_moves_exactly_as_the_model_says(played: SimulationResult) -> None:
    assert played.actual is not None
    differences = [f"{d.table} {d.name} {d.field}: expected {d.expected}, got {d.actual}" for d in played.differences]
    assert not differences, "\n".join(differences) + _why(played)
    assert played.model.province_totals.enterprises == ENTERPRISES  # the delta is not empty
    assert played.model.province_totals.revenue_thb > 0


async def test_every_event_got_its_answer_rejections_with_their_reason(played: SimulationResult) -> None:
    assert played.answers is not None
    assert played.answers.missing == ()
    assert played.answers.unexpected == (), _why(played)
    assert played.answers.seen > 300  # one per accepted event, besides the rejections and order answers


async def test_every_held_event_got_its_final_outcome(played: SimulationResult) -> None:
    assert played.holds is not None
    assert played.holds.unresolved == []
    assert played.holds.refused  # the scenario's dangling references, rejected when their wait expired
    if played.arrival == SHUFFLED:
        assert len(played.holds.released) >= 20  # applied when what they waited for came


async def test_every_bad_record_is_in_its_dead_letter_topic_with_its_kind(played: SimulationResult) -> None:
    assert played.dead_letters is not None
    assert played.dead_letters.missing == ()
    assert played.dead_letters.unexpected == (), _why(played)
    assert played.dead_letters.seen >= 30


async def test_each_step_catches_up_quickly(played: SimulationResult) -> None:
    slow = {s.name: s.catch_up_seconds for s in played.steps if (s.catch_up_seconds or 0) > 30}
    assert not slow, f"steps that took over 30 s to settle: {slow}"
