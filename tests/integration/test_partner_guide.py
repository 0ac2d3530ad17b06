"""docs/partners.md's examples, run as a partner runs them: a partner of its own (provisioned as `fivecogs partners
add` does), the guide's `fivecogs_client.py`, its publisher and its feedback reader as separate Python processes,
its curl requests against management's HTTP API, and the four cogs of the flow on the real stack.

The services' consumer groups start at the end of every topic they read, so they see only what this test's
partner sends and what the cogs make of it: the guide's fixed ids (ent-nst-001, ord-001…) meet no history."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from fivecogs_inputs.app import DEFINITION as INPUTS
from fivecogs_knowledge.app import DEFINITION as KNOWLEDGE
from fivecogs_management.app import DEFINITION as MANAGEMENT
from fivecogs_marketing.app import DEFINITION as MARKETING
from fivecogs_ops import partners, principals
from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts import PARTNER_EVENT_TYPES, feedback_topic, ingest_topic
from fivecogs_shared.contracts.feedback import ACCEPTED_TYPE, HELD_TYPE, ORDER_ACCEPTED_TYPE, REJECTED_TYPE
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.service import Runtime, ServiceDefinition, http_app
from tests import partner_guide as guide
from tests.support import Tap, data, header, operator_token

pytestmark = pytest.mark.integration

FLOW_COGS = (INPUTS, KNOWLEDGE, MARKETING, MANAGEMENT)
# Which of the flow's events causes each journey step (the batch is behind both its production and assessment).
CAUSE = {
    "delivered": "th.fivecogs.input.delivered.v1",
    "produced": "th.fivecogs.batch.produced.v2",
    "listed": "th.fivecogs.listing.requested.v1",
    "ordered": "th.fivecogs.order.placed.v1",
    "settled": "th.fivecogs.payment.received.v1",
    "distributed": "th.fivecogs.payment.received.v1",
}


async def test_every_example_of_the_partner_guide_runs_against_the_stack(run_service, stack_env, tmp_path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("the guide's API examples use curl")
    partner_id = f"guide-{uuid.uuid4().hex[:8]}"
    given = await partners.add(stack_env.kafka, partner_id, partners.PARTNER_COGS)
    try:
        env = _partner_files(tmp_path, given.summary())
        ingest = [ingest_topic(cog, partner_id) for cog in given.cogs]
        async with AsyncExitStack() as stack:
            runtimes = {}
            for definition in FLOW_COGS:
                group = f"fivecogs-{definition.cog}-test-{partner_id}"
                await _from_now_on(stack_env.kafka, group, definition)
                runtimes[definition.cog] = await stack.enter_async_context(
                    run_service(definition, consumer_group=group)
                )
            env |= {"FIVECOGS_API": await stack.enter_async_context(_serving(runtimes["management"]))}
            env |= {"FIVECOGS_TOKEN": operator_token()}
            published = await stack.enter_async_context(Tap(stack_env.kafka, *ingest, from_beginning=True))
            answers = await stack.enter_async_context(Tap(stack_env.kafka, feedback_topic(partner_id)))

            publisher = _Process(tmp_path / "publish.py", env)
            async with publisher:
                assert await publisher.finished(timeout=60) == 0, publisher.output()
            sent = [line.split()[1:] for line in publisher.lines if line.startswith("sent ")]
            event_of = {ce_type: event_id for event_id, ce_type in sent}
            # Every answer is on the feedback topic before the reader starts, as when a partner runs it after
            # publishing (a reader that starts at the end of the topic prints nothing then).
            await _all_answered(answers, len(sent), timeout=120)
            reader = await stack.enter_async_context(_Process(tmp_path / "feedback_reader.py", env))
            outcomes = await reader.until(lambda lines: _settled(lines, event_of), timeout=30)
            journey = await _journey_complete(env, timeout=60)
            enterprise_shown = await _shell(guide.one("api", "enterprise"), env)
            journey_shown = await _shell(guide.one("api", "journey"), env)
            records = await published.wait_for(lambda _: True, count=len(sent))
    finally:
        await partners.remove(stack_env.kafka, partner_id)
        async with kafka_admin.admin_client(stack_env.kafka) as admin:  # its topics too: nobody reads them again
            await admin.delete_topics(principals.partner_topics(partner_id, given.cogs))

    # The publisher sent one event of each type of its flow, each a §5 example, on its cog's topic, by its key.
    assert len(event_of) == len(sent) == 8, publisher.output()
    for record in records:
        ce_type = header(record, "ce_type")
        event_type = PARTNER_EVENT_TYPES[ce_type]
        assert record.topic == ingest_topic(event_type.cog, partner_id)
        assert data(record) == guide.one("event", ce_type).json(), f"{ce_type}: not the example of §5"
        assert record.key == str(data(record)[event_type.key_field]).encode()
        assert header(record, "ce_source") == given.summary()["ce_source"]
    assert sorted(header(r, "ce_id") for r in records) == sorted(event_of.values())

    # The feedback reader printed every answer on the topic, in order, as (your ce_id, ce_type, data).
    assert [(c, t, a) for c, t, a in outcomes] == [
        (header(r, "ce_correlationid"), header(r, "ce_type"), data(r)) for r in answers.records[: len(outcomes)]
    ]
    # Exactly one outcome per event, accepted, after at most one held notice; and the
    # order's acceptance beside its own.
    by_event: dict[str, list[str]] = {}
    for correlation, ce_type, _ in outcomes:
        by_event.setdefault(correlation, []).append(ce_type)
    for ce_type, event_id in event_of.items():
        told = [t for t in by_event.get(event_id, []) if t != ORDER_ACCEPTED_TYPE]
        assert told in ([ACCEPTED_TYPE], [HELD_TYPE, ACCEPTED_TYPE]), f"{ce_type}: {told}\n{reader.output()}"
    order_answers = [a for c, t, a in outcomes if t == ORDER_ACCEPTED_TYPE]
    assert len(order_answers) == 1
    assert order_answers[0] == guide.one("feedback", ORDER_ACCEPTED_TYPE).json()
    assert not [o for o in outcomes if o[1] == REJECTED_TYPE]

    # management's answers are those the guide shows, and each journey step names the partner event behind it.
    assert enterprise_shown == guide.one("api-response", "enterprise").json()
    assert journey_shown == journey
    _assert_steps_shown(guide.one("api-response", "journey").json(), journey_shown)
    for step in journey_shown["steps"]:
        if step["step"] == "assessed":
            cause = "th.fivecogs.batch.produced.v2" if step["what"].startswith("Batch ") else None
            cause = cause or "th.fivecogs.certification.granted.v1"
        else:
            cause = CAUSE[step["step"]]
        assert step["partner_event_id"] == event_of[cause], step


# --- what was printed and shown ------------------------------------------------------------------------


def _settled(lines: list[str], event_of: dict[str, str]) -> list[tuple[str, str, Any]] | None:
    """The reader's lines as (ce_correlationid, ce_type, answer), once every event sent has its outcome and the
    order its acceptance."""
    outcomes = []
    for line in lines:
        correlation, ce_type, answer = line.split(" ", 2)
        outcomes.append((correlation, ce_type, _answer(answer)))
    done = {c for c, t, _ in outcomes if t in (ACCEPTED_TYPE, REJECTED_TYPE)}
    ordered = any(t == ORDER_ACCEPTED_TYPE for _, t, _ in outcomes)
    return outcomes if ordered and set(event_of.values()) <= done else None


async def _all_answered(answers: Tap, events: int, timeout: float) -> None:
    """Until every event has its outcome and the order its acceptance; at the first rejection, fail with it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        types = [header(record, "ce_type") for record in answers.records]
        rejected = [data(r) for r in answers.records if header(r, "ce_type") == REJECTED_TYPE]
        assert not rejected, f"the guide's flow was refused: {rejected}"
        if types.count(ACCEPTED_TYPE) >= events and ORDER_ACCEPTED_TYPE in types:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not every event answered within {timeout}s: {types}")
        await asyncio.sleep(0.2)


def _answer(printed: str) -> Any:
    """The reader prints each answer as Python shows a dict: read it back."""
    import ast

    return ast.literal_eval(printed)


def _assert_steps_shown(shown: dict[str, Any], journey: dict[str, Any]) -> None:
    """The guide's journey is the real one, with some steps left out; its ids are of the same kind."""
    assert shown["product_id"] == journey["product_id"]
    strip = ("event_id", "partner_event_id")
    real = [{k: v for k, v in step.items() if k not in strip} for step in journey["steps"]]
    position = 0
    for step in shown["steps"]:
        assert set(step) == set(journey["steps"][0]), step
        uuid.UUID(step["event_id"])
        uuid.UUID(step["partner_event_id"])
        wanted = {k: v for k, v in step.items() if k not in strip}
        assert wanted in real[position:], f"the guide's step is not in the journey (in order): {wanted}\n{real}"
        position = real.index(wanted, position) + 1
    same_cause = [s["partner_event_id"] for s in shown["steps"] if s["step"] in ("settled", "distributed")]
    assert len(set(same_cause)) == 1, "a settlement and its distribution have one cause: the payment"


async def _journey_complete(env: dict[str, str], timeout: float) -> dict[str, Any]:
    """The product's journey once management has the last step of the flow (the distribution of the margin)."""
    url = env["FIVECOGS_API"] + "/v1/products/prod-balm-50g/journey"
    headers = {"Authorization": f"Bearer {env['FIVECOGS_TOKEN']}"}
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            response = await client.get(url, headers=headers)
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                steps = [s["step"] for s in body["steps"]]
                if "distributed" in steps and steps.count("assessed") == 2:
                    return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the journey is not complete after {timeout}s: {response.text}")
            await asyncio.sleep(0.3)


async def _shell(example: guide.Example, env: dict[str, str]) -> Any:
    shell = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", example.code, env={**os.environ, **env}, stdout=-1, stderr=-1
    )
    out, err = await asyncio.wait_for(shell.communicate(), 30)
    assert shell.returncode == 0, f"{example}: exit {shell.returncode}\n{err.decode()}"
    return json.loads(out)


# --- a partner's machine ---------------------------------------------------------------------------------


def _partner_files(folder: Path, summary: dict[str, Any]) -> dict[str, str]:
    """What the guide has a partner save: the settings it was given, fivecogs_client.py, and the examples."""
    (folder / "fivecogs-partner.json").write_text(json.dumps(summary, indent=2))
    (folder / "fivecogs_client.py").write_text(guide.one("client-module").code)
    (folder / "publish.py").write_text(guide.one("publish").code)
    (folder / "feedback_reader.py").write_text(guide.one("feedback-consumer").code)
    return {"FIVECOGS_PARTNER_SETTINGS": str(folder / "fivecogs-partner.json")}


class _Process:
    """One of the guide's Python examples, run as a partner runs it; its output lines are kept as they come."""

    def __init__(self, script: Path, env: dict[str, str]) -> None:
        self.script, self.env = script, {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.lines: list[str] = []
        self.errors = b""
        self._process: asyncio.subprocess.Process | None = None
        self._reading: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Process:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, str(self.script), cwd=self.script.parent, env=self.env, stdout=-1, stderr=-1
        )
        self._reading = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._process is not None
        assert self._reading is not None
        if self._process.returncode is None:
            self._process.terminate()  # the feedback reader runs until stopped
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._process.wait(), 10)
        if self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        await self._reading

    async def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        assert self._process.stderr is not None
        errors = asyncio.create_task(self._process.stderr.read())
        while line := await self._process.stdout.readline():
            self.lines.append(line.decode().rstrip("\n"))
        self.errors = await errors

    async def finished(self, timeout: float) -> int | None:
        assert self._process is not None
        assert self._reading is not None
        await asyncio.wait_for(self._process.wait(), timeout)
        await self._reading
        return self._process.returncode

    async def until(self, check: Callable[[list[str]], Any], timeout: float) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while not (found := check(list(self.lines))):
            assert self._process is not None
            if self._process.returncode is not None or asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self.script.name} did not print what was expected:\n{self.output()}")
            await asyncio.sleep(0.2)
        return found

    def output(self) -> str:
        return "\n".join(self.lines) + "\n--- stderr ---\n" + self.errors.decode(errors="replace")[-4000:]


# --- the services ----------------------------------------------------------------------------------------


async def _from_now_on(kafka: KafkaAccess, group: str, definition: ServiceDefinition) -> None:
    """The group starts at the end of every topic the service reads: it sees only what is sent from now on."""
    pattern = re.compile(definition.sources().pattern())
    async with kafka_admin.admin_client(kafka) as admin:
        topics = [t for t in await kafka_admin.list_topics(admin) if pattern.match(t)]
        partitions = await kafka_admin.partitions_of(admin, topics)
    if partitions:
        await kafka_admin.reset_group_offsets(kafka, group, await kafka_admin.end_offsets(kafka, partitions))


@contextlib.asynccontextmanager
async def _serving(runtime: Runtime) -> AsyncIterator[str]:
    """management's HTTP API on a free loopback port, as `fivecogs-management` serves it; yields its address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(http_app(runtime), host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
