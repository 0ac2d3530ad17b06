"""Recovery tools on the real stack: rebuilding management from the log, and replaying a dead-letter topic."""

from __future__ import annotations

import dataclasses
import uuid

import httpx
import pytest

from fivecogs_inputs.app import DEFINITION as INPUTS
from fivecogs_management.app import DEFINITION as MANAGEMENT
from fivecogs_ops import dlq
from fivecogs_ops.principals import REPLAYER
from fivecogs_ops.replay import ReplayRefused, replay
from fivecogs_shared.contracts import events_topic
from fivecogs_shared.envelope import Envelope
from fivecogs_shared.service import http_app, running
from fivecogs_shared.settings import load_settings
from fivecogs_shared.uow import UnitOfWork
from tests.support import FEEDBACK, Partner, Tap, bearer, data, header, ingest, wait_caught_up

pytestmark = pytest.mark.integration


def _enterprise(enterprise_id: str) -> dict[str, object]:
    return {
        "enterprise_id": enterprise_id,
        "name": "Phetchaburi palm sugar group",
        "province": "Phetchaburi",
        "sector": "processing",
        "members": 20,
        "target_poor_households": 6,
    }


async def test_replaying_management_rebuilds_the_identical_report(stack_env, partner: Partner) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        "management",
        **stack_env.service_settings("management"),
        db_schema=f"test_replay_{suffix}",
        consumer_group=f"fivecogs-management-test-replay-{suffix}",
        relay_poll_seconds=0.2,
    )
    topics = [*MANAGEMENT.sources().upstream, ingest("management")]
    inputs = Partner(stack_env.kafka, source="fivecogs/inputs")
    async with inputs:
        ent = f"ent-{suffix}"
        registered = {**_enterprise(ent), "region": "central"}
        await inputs.send(events_topic("inputs"), "th.fivecogs.inputs.enterprise.registered.v1", registered, ent)

    async def report() -> dict[str, object]:
        async with running(MANAGEMENT, settings) as runtime:
            await wait_caught_up(stack_env.kafka, settings.group_id, topics, timeout=240)
            transport = httpx.ASGITransport(app=http_app(runtime))
            async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=bearer()) as client:
                body: dict[str, object] = (await client.get("/v1/report/provinces")).json()
                return body

    first = await report()
    assert any(row["province"] == "Phetchaburi" for row in first["rows"])  # type: ignore[attr-defined]
    plan = await replay(
        stack_env.as_user(REPLAYER),
        stack_env.database_url,
        "management",
        schema=settings.schema_name,
        group_id=settings.group_id,
    )
    assert "inbox" in plan.tables
    assert plan.events > 0
    assert await report() == first


async def test_replay_refuses_a_service_that_would_repeat_side_effects(stack_env) -> None:
    with pytest.raises(ReplayRefused, match="communication cannot be replayed"):
        await replay(stack_env.kafka, stack_env.database_url, "communication")


async def test_a_dead_lettered_event_is_applied_once_replayed_after_the_fix(
    run_service, stack_env, partner: Partner
) -> None:
    ent = f"ent-{uuid.uuid4().hex[:8]}"
    broken = {"on": True}
    handler = INPUTS.handlers["th.fivecogs.enterprise.registered.v1"]

    async def until_fixed(uow: UnitOfWork, event: Envelope) -> None:
        if broken["on"] and event.key == ent:
            raise RuntimeError("a bug in the enterprise handler")
        await handler(uow, event)

    flaky = dataclasses.replace(
        INPUTS, handlers={**INPUTS.handlers, "th.fivecogs.enterprise.registered.v1": until_fixed}
    )
    topics = (events_topic("inputs"), FEEDBACK, f"{ingest('inputs')}.dlq")
    async with Tap(stack_env.kafka, *topics) as tap, run_service(flaky):
        event_id = await partner.send(ingest("inputs"), "th.fivecogs.enterprise.registered.v1", _enterprise(ent), ent)
        [dead] = await tap.wait_for(lambda r: r.topic.endswith(".dlq") and header(r, "ce_id") == event_id)
        assert header(dead, "fivecogs_error_kind") == "processing_error"
        [told] = await tap.wait_for(lambda r: r.topic == FEEDBACK and data(r).get("event_id") == event_id)
        assert data(told)["reason"] == "processing_error"

        broken["on"] = False  # the fix is deployed
        summary = await dlq.drain(
            stack_env.as_user(REPLAYER),
            "inputs",
            kinds=frozenset({"processing_error"}),
            group_id=f"fivecogs-dlq-test-{uuid.uuid4().hex[:8]}",
        )
        assert summary.replayed >= 1
        [registered] = await tap.wait_for(lambda r: r.topic == events_topic("inputs") and r.key == ent.encode())
    assert data(registered)["members"] == 20
    assert header(registered, "ce_correlationid") == event_id  # the same partner event, applied once
