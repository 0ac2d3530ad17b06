"""Attacks on the broker as a partner, a service or a stranger would try them: every one must be refused by
Kafka itself (authentication, ACLs) or, where Kafka cannot know, by the binding of events to their topic."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError
from typer.testing import CliRunner

from fivecogs_inputs.app import DEFINITION as INPUTS
from fivecogs_ops import dlq, partners
from fivecogs_ops.kafka_security import describe_acls
from fivecogs_ops.partners import PartnerAccess
from fivecogs_ops.principals import OPERATOR, REPLAYER
from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts import dlq_topic, events_topic, feedback_topic, ingest_topic
from fivecogs_shared.kafka_access import KafkaAccess
from tests.integration.test_lag import enterprise
from tests.support import Partner, Tap, data, header

REGISTERED = "th.fivecogs.enterprise.registered.v1"
SETTLEMENT = "th.fivecogs.marketing.settlement.recorded.v1"


@pytest.fixture
async def two_partners(stack_env) -> AsyncIterator[tuple[PartnerAccess, PartnerAccess]]:
    """Two separate organisations, provisioned for every cog; revoked afterwards."""
    suffix = uuid.uuid4().hex[:6]
    made = [await partners.add(stack_env.kafka, f"sec-{name}-{suffix}", partners.PARTNER_COGS) for name in "ab"]
    yield made[0], made[1]
    for partner in made:
        await partners.remove(stack_env.kafka, partner.partner)


async def _produce(access: KafkaAccess, topic: str, value: bytes = b"{}") -> None:
    producer = AIOKafkaProducer(**access.client(), request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def _read(access: KafkaAccess, topic: str) -> None:
    """Subscribe and fetch once: a topic the principal may not read raises TopicAuthorizationFailedError."""
    consumer = AIOKafkaConsumer(
        topic, **access.client(), group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        await consumer.start()
        await asyncio.wait_for(consumer.getmany(timeout_ms=3000), 15)
    finally:
        await consumer.stop()


async def _connects(access: KafkaAccess) -> bool:
    return await kafka_admin.broker_reachable(access, timeout=5.0)


# -- authentication --------------------------------------------------------------------------------------


async def test_an_anonymous_client_is_refused(stack_env) -> None:
    anonymous = KafkaAccess(stack_env.kafka.bootstrap, "PLAINTEXT")
    assert not await _connects(anonymous)
    with pytest.raises(KafkaConnectionError):
        await _produce(anonymous, events_topic("marketing"))


async def test_a_wrong_password_is_refused(stack_env, two_partners) -> None:
    a, _ = two_partners
    assert await _connects(a.access)
    assert not await _connects(a.access.as_user(a.access.username, a.access.password + "x"))
    assert not await _connects(stack_env.kafka.as_user("admin", "guess"))


async def test_rotation_ends_the_old_password_and_removal_ends_the_partner(stack_env) -> None:
    partner = f"sec-rot-{uuid.uuid4().hex[:6]}"
    first = await partners.add(stack_env.kafka, partner, ["inputs"])
    second = await partners.rotate(stack_env.kafka, partner)
    assert second.access.password != first.access.password
    assert not await _connects(first.access)
    await _produce(second.access, ingest_topic("inputs", partner))
    assert await partners.remove(stack_env.kafka, partner) > 0
    assert not await _connects(second.access)
    assert partner not in [p.partner for p in await partners.listing(stack_env.kafka)]
    # The services keep their right to dead-letter what the partner sent before it was removed.
    async with kafka_admin.admin_client(stack_env.kafka) as admin:
        dead_letters = f"{ingest_topic('inputs', partner)}.dlq"
        kept = await describe_acls(admin, principal="User:service-inputs", name=dead_letters)
    assert {acl.operation for acl in kept} == {"write", "describe"}


# -- authorization: what each principal may write and read -----------------------------------------------


async def test_a_partner_writes_only_its_own_ingest_topics(stack_env, two_partners) -> None:
    a, b = two_partners
    await _produce(a.access, ingest_topic("marketing", a.partner))
    for forbidden in (
        ingest_topic("marketing", b.partner),  # another partner's topic
        events_topic("marketing"),  # a forged settlement, straight onto the cog's events
        events_topic("inputs"),
        feedback_topic(b.partner),  # answers in another partner's name
        dlq_topic(ingest_topic("marketing", a.partner)),  # its own dead letters: the service's to write
    ):
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(a.access, forbidden)


async def test_a_partner_reads_only_its_own_feedback(stack_env, two_partners) -> None:
    a, b = two_partners
    await _read(a.access, feedback_topic(a.partner))
    for forbidden in (feedback_topic(b.partner), ingest_topic("marketing", b.partner), events_topic("marketing")):
        with pytest.raises(TopicAuthorizationFailedError):
            await _read(a.access, forbidden)


async def test_a_service_writes_only_its_own_events(stack_env) -> None:
    inputs = stack_env.service("inputs")
    await _produce(inputs, events_topic("inputs"))
    for forbidden in (events_topic("marketing"), events_topic("management"), ingest_topic("inputs", "test-partner")):
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(inputs, forbidden)


async def test_the_operator_reads_but_writes_nothing(stack_env) -> None:
    operator = stack_env.as_user(OPERATOR)
    await _read(operator, events_topic("marketing"))
    for forbidden in (events_topic("marketing"), ingest_topic("marketing", "test-partner")):
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(operator, forbidden)


async def test_a_forged_settlement_cannot_be_produced_by_anyone_but_marketing(stack_env, two_partners) -> None:
    settlement = json.dumps({"order_id": "o-forged", "revenue_thb": "999999999.00"}).encode()
    for who in (two_partners[0].access, stack_env.as_user(OPERATOR), stack_env.service("management")):
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(who, events_topic("marketing"), settlement)


async def test_a_partner_cannot_delete_or_create_topics(stack_env, two_partners) -> None:
    a, b = two_partners
    async with kafka_admin.admin_client(a.access) as admin:
        response = await admin.delete_topics([ingest_topic("marketing", b.partner)])
        assert all(code for _, code in response.topic_error_codes)  # refused, topic by topic
    async with kafka_admin.admin_client(stack_env.kafka) as admin:
        assert ingest_topic("marketing", b.partner) in await kafka_admin.list_topics(admin)


# -- binding events to their producer ---------------------------------------------------------------------


async def test_an_event_claiming_another_partners_source_is_refused_and_its_producer_told(
    run_service, stack_env, two_partners
) -> None:
    a, b = two_partners
    ent, event_id = f"ent-{uuid.uuid4().hex[:8]}", f"ev-{uuid.uuid4().hex[:8]}"
    topics = (feedback_topic(a.partner), feedback_topic(b.partner), events_topic("inputs"))
    async with (
        Tap(stack_env.kafka, *topics) as tap,
        run_service(INPUTS),
        Partner(a.access, source=f"partner/{b.partner}") as impostor,
        Partner(b.access, source=f"partner/{b.partner}") as owner,
    ):
        await impostor.send(ingest_topic("inputs", a.partner), REGISTERED, enterprise(ent), ent, event_id=event_id)
        [told] = await tap.wait_for(lambda r: r.topic == feedback_topic(a.partner))
        assert data(told)["reason"] == "unauthorized_source"
        assert data(told)["event_id"] == event_id
        # The real owner then sends its own event under the same id: it is applied, not taken for a conflict.
        await owner.send(ingest_topic("inputs", b.partner), REGISTERED, enterprise(ent), ent, event_id=event_id)
        [registered] = await tap.wait_for(lambda r: r.topic == events_topic("inputs") and r.key == ent.encode())
        assert header(registered, "ce_correlationid") == event_id
        [answer] = await tap.wait_for(lambda r: r.topic == feedback_topic(b.partner))
    # The victim heard only the answer to its own event, never of the impostor's.
    assert (header(answer, "ce_type"), data(answer)["event_id"]) == ("th.fivecogs.partner.event.accepted.v1", event_id)
    assert len([r for r in tap.records if r.topic == feedback_topic(b.partner)]) == 1
    registrations = [r for r in tap.records if r.topic == events_topic("inputs") and r.key == ent.encode()]
    assert len(registrations) == 1  # the impostor's copy had no effect


async def test_dlq_replay_sends_a_record_only_back_to_its_own_topic(stack_env) -> None:
    partner = f"sec-dlq-{uuid.uuid4().hex[:6]}"
    await partners.add(stack_env.kafka, partner, ["marketing"])
    source = ingest_topic("marketing", partner)
    # A dead letter whose header names another topic (the events topic): replay must not follow the header.
    headers = [
        ("ce_id", b"ev-dlq"),
        ("fivecogs_error_kind", b"processing_error"),
        ("fivecogs_original_topic", events_topic("marketing").encode()),
    ]
    producer = AIOKafkaProducer(**stack_env.kafka.client())
    await producer.start()
    try:
        await producer.send_and_wait(dlq_topic(source), b'{"x": 1}', key=b"k", headers=headers)
    finally:
        await producer.stop()
    async with Tap(stack_env.kafka, source, events_topic("marketing")) as tap:
        summary = await dlq.drain(
            stack_env.as_user(REPLAYER), "marketing", group_id=f"fivecogs-dlq-test-{uuid.uuid4().hex[:8]}"
        )
        assert summary.replayed >= 1
        [back] = await tap.wait_for(lambda r: header(r, "ce_id") == "ev-dlq")
    assert back.topic == source
    assert not [r for r in tap.records if r.topic == events_topic("marketing") and header(r, "ce_id") == "ev-dlq"]


# -- provisioning from the command line --------------------------------------------------------------------


def test_partners_add_prints_ready_client_settings_once(stack_env, monkeypatch) -> None:
    from fivecogs_ops.cli import app

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", stack_env.kafka.bootstrap)
    for name, value in stack_env.kafka.env().items():
        monkeypatch.setenv(name, value)
    partner = f"sec-cli-{uuid.uuid4().hex[:6]}"
    added = CliRunner().invoke(app, ["partners", "add", partner, "--cogs", "inputs,knowledge", "--json"])
    assert added.exit_code == 0, added.output
    given = json.loads(added.stdout)
    assert given["writes"] == {
        "inputs": ingest_topic("inputs", partner),
        "knowledge": ingest_topic("knowledge", partner),
    }
    client = given["client"]
    assert client["sasl_mechanism"] == "SCRAM-SHA-512"
    assert client["sasl_plain_username"] == f"partner.{partner}"
    listed = CliRunner().invoke(app, ["partners", "list", "--json"])
    assert {"partner": partner, "cogs": ["inputs", "knowledge"], "has_credentials": True} in json.loads(listed.stdout)
    assert client["sasl_plain_password"] not in listed.stdout  # shown once, never listed
    refused = CliRunner().invoke(app, ["partners", "add", "Not.A.Partner", "--cogs", "inputs"])
    assert refused.exit_code == 1
    unknown = CliRunner().invoke(app, ["partners", "add", partner, "--cogs", "weather"])
    assert unknown.exit_code == 1
    CliRunner().invoke(app, ["partners", "remove", partner])


async def test_partner_settings_work_as_given(stack_env) -> None:
    partner = f"sec-kw-{uuid.uuid4().hex[:6]}"
    given = await partners.add(stack_env.kafka, partner, ["inputs"])
    producer = AIOKafkaProducer(**given.client())  # exactly what `--json` prints, nothing added
    await producer.start()
    try:
        await producer.send_and_wait(ingest_topic("inputs", partner), b"{}")
    except KafkaError as error:  # pragma: no cover - the assertion below says what went wrong
        pytest.fail(f"the printed settings did not work: {error!r}")
    finally:
        await producer.stop()
    await partners.remove(stack_env.kafka, partner)
