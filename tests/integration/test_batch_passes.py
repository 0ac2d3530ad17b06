"""A batch's two passes on the real broker and database: the fast pass (no savepoint per event) and the careful
pass it falls back to when an event did something the fast pass cannot undo alone."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest

from fivecogs_inputs.app import DEFINITION as INPUTS
from fivecogs_shared.contracts import events_topic
from fivecogs_shared.errors import RuleViolation
from fivecogs_shared.uow import UnitOfWork
from tests.integration.test_lag import enterprise
from tests.support import FEEDBACK, Partner, Tap, ce_headers, data, ingest, wait_caught_up

pytestmark = pytest.mark.integration

REGISTERED = "th.fivecogs.enterprise.registered.v1"


async def test_a_handler_that_writes_before_refusing_loses_only_its_own_write(run_service, stack_env) -> None:
    """No savepoint protects an event on the fast pass: a refusal after a write of the handler's own must send
    the batch to the careful pass, where the write goes with the refusal and its neighbours stay applied."""
    culprit = f"ent-{uuid.uuid4().hex[:6]}-culprit"
    register = INPUTS.handlers[REGISTERED]

    async def writes_then_refuses(uow: UnitOfWork, event: Any) -> None:
        if event.key != culprit:
            await register(uow, event)
            return
        await uow.conn.execute(
            "INSERT INTO enterprises (enterprise_id, name, province, sector, members, target_poor_households) "
            "VALUES ($1, 'half-done', 'Nan', 'processing', 1, 0)",
            culprit,
        )
        raise RuleViolation("refused_after_writing", "the handler wrote, then refused")

    definition = dataclasses.replace(INPUTS, handlers={**INPUTS.handlers, REGISTERED: writes_then_refuses})
    neighbours = [f"ent-{uuid.uuid4().hex[:6]}-{n}" for n in range(8)]
    events = events_topic("inputs")
    async with Partner(stack_env.kafka) as partner, Tap(stack_env.kafka, events, FEEDBACK) as tap:
        culprit_id, ids = str(uuid.uuid4()), []
        for key in [*neighbours[:4], culprit, *neighbours[4:]]:  # published first: they arrive in one batch
            event_id = culprit_id if key == culprit else str(uuid.uuid4())
            ids.append(event_id)
            value = json.dumps(enterprise(key)).encode()
            await partner.send_raw(ingest("inputs"), value, key, ce_headers(REGISTERED, event_id=event_id))
        async with run_service(definition) as runtime:
            await tap.wait_for(lambda r: r.topic == events and r.key.decode() in neighbours, count=len(neighbours))
            await tap.wait_for(lambda r: r.topic == FEEDBACK and data(r).get("reason") == "rule:refused_after_writing")
            await wait_caught_up(stack_env.kafka, runtime.settings.group_id, [ingest("inputs")])
            stored = {row["enterprise_id"] for row in await runtime.pool.fetch("SELECT enterprise_id FROM enterprises")}
            outcomes = dict(
                await runtime.pool.fetch(
                    "SELECT outcome, count(*) FROM inbox WHERE event_id = ANY($1::text[]) GROUP BY outcome", ids
                )
            )

    told = [data(r) for r in tap.records if r.topic == FEEDBACK and data(r)["event_id"] == culprit_id]
    assert [answer.get("reason") for answer in told] == ["rule:refused_after_writing"]
    assert culprit not in stored  # its half-done write was undone with it
    assert set(neighbours) <= stored
    assert outcomes == {"accepted": len(neighbours), "rule:refused_after_writing": 1}
