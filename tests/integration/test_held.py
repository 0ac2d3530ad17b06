"""Held events as operators see them, on the real stack: a delivery for an enterprise not registered yet is held by
inputs; `fivecogs_events_held` counts it on /metrics and `fivecogs held list` lists it, with what it awaits; once
the registration arrives the delivery is applied, the gauge is 0 again and the list is empty.

The service's group starts at the end of every topic it reads and its schema is new, so only this test's events
are in it (never what earlier tests left on the test partner's topics)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fivecogs_inputs.app import DEFINITION
from fivecogs_shared.contracts.feedback import ACCEPTED_TYPE, HELD_TYPE, REJECTED_TYPE
from fivecogs_shared.service import http_app
from tests.integration.test_lag import INGEST, REGISTERED, enterprise, start_at_end, until
from tests.support import FEEDBACK, PARTNER_SOURCE, Partner, Tap, data, header

pytestmark = pytest.mark.integration

DELIVERED = "th.fivecogs.input.delivered.v1"
REASON = "rule:unknown_enterprise"


def delivery(delivery_id: str, batch_id: str, enterprise_id: str) -> dict[str, object]:
    return {
        "delivery_id": delivery_id,
        "batch_id": batch_id,
        "enterprise_id": enterprise_id,
        "item": "natural dye",
        "quantity": "2.5",
        "unit": "kg",
        "cost_thb": "120.00",
        "local_source": True,
    }


def held_gauges(text: str) -> dict[tuple[str, str, str], float]:
    """(metric, service, reason) -> value of the two held gauges."""
    names = ("fivecogs_events_held", "fivecogs_events_held_oldest_seconds")
    return {
        (s.name, s.labels["service"], s.labels["reason"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in names
    }


async def held_list(database_url: str, *args: str) -> tuple[int, dict[str, Any]]:
    """`fivecogs held list ... --json`, as an operator runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fivecogs_ops.cli", "held", "list", *args, "--json",
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return int(process.returncode or 0), json.loads(out)


async def test_a_held_event_is_counted_and_listed_until_its_reference_arrives(run_service, stack_env) -> None:
    suffix = uuid.uuid4().hex[:8]
    ent, batch, group = f"ent-held-{suffix}", f"batch-held-{suffix}", f"fivecogs-inputs-test-held-{suffix}"
    await start_at_end(stack_env.kafka, group)
    async with (
        asyncio.timeout(180),
        Partner(stack_env.kafka, source=f"{PARTNER_SOURCE}/held-{suffix}") as partner,
        Tap(stack_env.kafka, FEEDBACK) as tap,
        run_service(DEFINITION, consumer_group=group, hold_check_seconds=0.2) as runtime,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(runtime)), base_url="http://service") as http,
    ):
        schema = runtime.settings.schema_name

        async def gauges() -> dict[tuple[str, str, str], float]:
            return held_gauges((await http.get("/metrics")).text)

        late = await partner.send(INGEST, DELIVERED, delivery(f"{batch}-d1", batch, ent), batch)
        [notice] = await tap.wait_for(lambda r: header(r, "ce_type") == HELD_TYPE and data(r)["event_id"] == late)
        count = ("fivecogs_events_held", "inputs", REASON)
        while_held = await until(lambda: _at_least(gauges(), count, 1), timeout=30, what="the held gauge to count it")
        code, listed = await held_list(stack_env.database_url, "inputs", "--schema", schema)
        code_filtered, filtered = await held_list(
            stack_env.database_url, "inputs", "--schema", schema, "--reason", "unknown_enterprise"
        )
        code_other, other = await held_list(
            stack_env.database_url, "inputs", "--schema", schema, "--reason", "rule:missing_delivery"
        )

        registration = await partner.send(INGEST, REGISTERED, enterprise(ent), ent)
        answers = await tap.wait_for(lambda r: _outcome_to(r, {registration, late}), count=2)
        after = await until(lambda: _at_most(gauges(), count, 0), timeout=30, what="the held gauge back to 0")
        code_after, listed_after = await held_list(stack_env.database_url, "inputs", "--schema", schema)

    assert data(notice)["awaits"] == f"enterprise:{ent}"
    assert while_held[count] >= 1
    assert while_held[("fivecogs_events_held_oldest_seconds", "inputs", REASON)] >= 0
    assert code == 0
    [service] = listed["services"]
    assert (service["service"], service["schema"]) == ("inputs", schema)
    [ours] = [e for e in service["events"] if e["event_id"] == late]
    assert ours["awaits"] == f"enterprise:{ent}"
    assert ours["reason"] == REASON
    assert ours["event_type"] == DELIVERED
    assert ours["source"] == f"{PARTNER_SOURCE}/held-{suffix}"
    assert ours["topic"] == INGEST
    assert ours["held_seconds"] >= 0
    assert 0 < ours["expires_in_seconds"] <= runtime.settings.hold_seconds
    assert {r["reason"]: r["count"] for r in service["by_reason"]}[REASON] >= 1
    assert code_filtered == 0
    assert late in [e["event_id"] for e in filtered["services"][0]["events"]]
    assert code_other == 0
    assert late not in [e["event_id"] for e in other["services"][0]["events"]]

    # Applied once its enterprise was: both accepted, each once.
    assert sorted((data(r)["event_id"], header(r, "ce_type")) for r in answers) == sorted(
        [(registration, ACCEPTED_TYPE), (late, ACCEPTED_TYPE)]
    )
    assert after[count] == 0
    assert code_after == 0
    assert listed_after["services"][0]["events"] == []
    assert listed_after["services"][0]["count"] == 0


def _outcome_to(record: Any, event_ids: set[str]) -> bool:
    """An outcome (accepted or rejected; a held notice is not one) answering one of these events."""
    return header(record, "ce_type") in (ACCEPTED_TYPE, REJECTED_TYPE) and data(record)["event_id"] in event_ids


async def _at_least(shown: Any, key: tuple[str, str, str], value: float) -> dict[tuple[str, str, str], float] | None:
    gauges: dict[tuple[str, str, str], float] = await shown
    return gauges if gauges.get(key, 0) >= value else None


async def _at_most(shown: Any, key: tuple[str, str, str], value: float) -> dict[tuple[str, str, str], float] | None:
    gauges: dict[tuple[str, str, str], float] = await shown
    return gauges if key in gauges and gauges[key] <= value else None
