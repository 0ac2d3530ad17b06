"""Subscriptions cannot point the webhook worker inside, nor take over another partner's subscription, on the
real broker and database: forbidden destinations are refused at subscription (`rule:webhook_destination`) and
again at every send (a name re-pointed at 127.0.0.1 after its subscription is never posted to), and a partner
reusing another's subscriber id is refused (`rule:subscription_owned`) while the owner's notices keep flowing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from fivecogs_communication import destinations
from fivecogs_communication.app import DEFINITION, definition
from fivecogs_communication.domain import notice_id
from fivecogs_communication.webhooks import WebhookSettings
from fivecogs_ops import partners
from fivecogs_shared.contracts import events_topic, feedback_topic
from fivecogs_shared.service import Runtime
from tests.integration.test_communication_service import (
    LISTED,
    SECRET,
    SUBSCRIBED,
    _listing,
    _service,
    attempts,
    delivery,
    eventually,
    subscribe,
    webhook_server,
)
from tests.support import FEEDBACK, PARTNER, Partner, Tap, data, ingest, wait_caught_up

pytestmark = pytest.mark.integration

PROVINCE = "Ranong"  # no other test's listings notify these subscribers
REJECTED = "th.fivecogs.partner.event.rejected.v1"


async def told(tap: Tap, partner: str, event_id: str) -> dict[str, Any]:
    """The feedback the partner got about its event, on its own feedback topic."""

    def answers(r: Any) -> bool:
        return r.topic == feedback_topic(partner) and data(r).get("event_id") == event_id

    [record] = await tap.wait_for(answers)
    return data(record)


async def send_subscription(partner: Partner, subscription: dict[str, Any], partner_id: str = PARTNER) -> str:
    body = {"network": "state", "topics": ["listing"], "provinces": [PROVINCE], **subscription}
    return await partner.send(ingest("communication", partner_id), SUBSCRIBED, body, subscription["subscriber_id"])


async def test_subscriptions_to_forbidden_destinations_are_refused(run_service, stack_env, test_partner) -> None:
    u = uuid.uuid4().hex[:8]
    refused = {
        # A real name: /etc/hosts resolves localhost to 127.0.0.1 (the service's own health port is 8085 by default).
        f"{u}-localhost": ("http://localhost:8085/metrics", "localhost resolves to 127.0.0.1, a loopback address"),
        f"{u}-metadata": ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        f"{u}-hex": ("http://0x7f000001:8085/", "127.0.0.1 is a loopback address"),  # read as 127.0.0.1 already
        f"{u}-private": ("https://[::ffff:10.0.0.1]/h", "[::ffff:a00:1] is an IPv4-mapped form of 10.0.0.1"),
        f"{u}-userinfo": ("http://user:secret@example.org/h", "user name or password"),
    }
    async with (
        Partner(test_partner.access) as partner,
        Tap(stack_env.kafka, FEEDBACK) as tap,
        run_service(DEFINITION) as runtime,
    ):
        sent = {
            sid: await send_subscription(partner, {"subscriber_id": sid, "webhook_url": url})
            for sid, (url, _) in refused.items()
        }
        # A subscription without a webhook, after them on another key: applied, so the refusals held nothing up.
        await subscribe(partner, runtime, {"subscriber_id": f"{u}-plain", "topics": ["listing"]})
        answers = {sid: await told(tap, PARTNER, event_id) for sid, event_id in sent.items()}
        stored = await runtime.pool.fetchval(
            "SELECT count(*) FROM subscribers WHERE subscriber_id = ANY($1)", list(refused)
        )

    for sid, (_, detail) in refused.items():
        assert answers[sid]["reason"] == "rule:webhook_destination", sid
        assert answers[sid]["event_type"] == SUBSCRIBED
        assert detail in answers[sid]["detail"], (sid, answers[sid]["detail"])
    assert stored == 0


async def test_a_subscription_belongs_to_the_partner_that_created_it(run_service, stack_env) -> None:
    u = uuid.uuid4().hex[:8]
    sid = f"{u}-office"
    owner, intruder = f"owner-{u}", f"intruder-{u}"
    owners = await partners.add(stack_env.kafka, owner, ["communication"])
    intruders = await partners.add(stack_env.kafka, intruder, ["communication"])
    with webhook_server() as owners_hook, webhook_server() as intruders_hook:
        async with (
            Partner(owners.access, source=f"partner/{owner}") as first_desk,
            Partner(owners.access, source=f"partner/{owner}/desk-2") as second_desk,
            Partner(intruders.access, source=f"partner/{intruder}") as other,
            Partner(stack_env.kafka, source="fivecogs/marketing") as marketing,
            Tap(stack_env.kafka, feedback_topic(intruder)) as tap,
            run_service(_service()) as runtime,
        ):
            await subscribe(first_desk, runtime, _subscription(sid, owners_hook.url(f"/{u}")), partner_id=owner)
            takeover = await send_subscription(other, _subscription(sid, intruders_hook.url(f"/{u}")), intruder)
            answer = await told(tap, intruder, takeover)
            after_takeover = await _row(runtime, sid)
            listed = await marketing.send(events_topic("marketing"), LISTED, _listing(u, PROVINCE), f"prod-{u}")
            notice = notice_id(sid, listed)
            await eventually(lambda: _delivered(runtime, notice))
            # Another desk of the owner may still change it (the owner is the partner id, not the whole source).
            update = {**_subscription(sid, owners_hook.url(f"/{u}/v2")), "topics": ["listing", "sale"]}
            await second_desk.send(ingest("communication", owner), SUBSCRIBED, update, sid)
            updated = await eventually(lambda: _row_with_topics(runtime, sid, ["listing", "sale"]))

    assert answer["reason"] == "rule:subscription_owned"
    assert answer["detail"] == f"subscriber id {sid} belongs to another partner"
    assert (after_takeover["owner"], after_takeover["webhook_url"]) == (f"owner-{u}", owners_hook.url(f"/{u}"))
    assert [r.path for r in owners_hook.of(notice)] == [f"/{u}"]  # the original URL still receives the notices
    assert intruders_hook.received == []
    assert (updated["owner"], updated["webhook_url"]) == (f"owner-{u}", owners_hook.url(f"/{u}/v2"))


def _subscription(sid: str, url: str) -> dict[str, Any]:
    return {
        "subscriber_id": sid,
        "network": "state",
        "topics": ["listing"],
        "provinces": [PROVINCE],
        "webhook_url": url,
    }


async def _row(runtime: Runtime, sid: str) -> Any:
    return await runtime.pool.fetchrow("SELECT * FROM subscribers WHERE subscriber_id = $1", sid)


async def _row_with_topics(runtime: Runtime, sid: str, topics: list[str]) -> Any:
    row = await _row(runtime, sid)
    return row if row is not None and list(row["topics"]) == topics else None


async def _delivered(runtime: Runtime, notice: str) -> Any:
    row = await delivery(runtime, notice)
    return row if row is not None and row["status"] == "delivered" else None


class Rebinding:
    """A name that resolves to a public address once (the subscription's check), then to this machine."""

    def __init__(self, name: str) -> None:
        self.name, self.lookups = name, 0

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        assert host == self.name
        self.lookups += 1
        return ["93.184.216.34"] if self.lookups == 1 else ["127.0.0.1"]


async def test_a_name_rebound_to_loopback_after_its_subscription_is_never_posted_to(
    run_service, stack_env, partner: Partner
) -> None:
    u = uuid.uuid4().hex[:8]
    sid, name = f"{u}-rebound", f"rebind-{u}.test"
    resolver = Rebinding(name)
    # Strict settings (no loopback); the resolver is the only fake: at send, the name points at a live local
    # server that a worker connecting by name (or trusting a stale answer) would reach.
    settings = WebhookSettings(secret=SECRET, lease_seconds=10, poll_seconds=0.1, timeout_seconds=2, max_attempts=5)
    service = definition(settings, destinations.DestinationPolicy(resolver=resolver))
    with webhook_server() as hook:
        async with (
            Partner(stack_env.kafka, source="fivecogs/marketing") as marketing,
            run_service(service) as runtime,
        ):
            # Older listings in the province (earlier runs) must not reach this subscriber: read them first.
            upstream = [events_topic(cog) for cog in ("knowledge", "marketing", "management")]
            await wait_caught_up(stack_env.kafka, runtime.settings.group_id, upstream)
            await subscribe(partner, runtime, _subscription(sid, f"http://{name}:{hook.port}/h"))
            listed = await marketing.send(events_topic("marketing"), LISTED, _listing(u, PROVINCE), f"prod-{u}")
            notice = notice_id(sid, listed)
            failed = await eventually(lambda: _failed(runtime, notice))
            tried = await attempts(runtime, notice)
            given_up = runtime.metrics.registry.get_sample_value(
                "fivecogs_webhook_given_up_total", {"why": "destination"}
            )

    assert hook.received == []
    reason = f"{name} resolves to 127.0.0.1, a loopback address"
    # Given up for good at the first of five attempts, with the reason kept where failed deliveries are.
    assert (failed["attempts"], failed["last_status_code"]) == (1, None)
    assert failed["last_error"] == f"destination refused: {reason}"
    assert failed["finished_at"] is not None
    assert [(a["attempt"], a["status_code"], a["error"]) for a in tried] == [
        (1, None, f"destination refused: {reason}")
    ]
    assert given_up == 1
    assert resolver.lookups == 2  # once for the subscription, once for the send


async def _failed(runtime: Runtime, notice: str) -> Any:
    row = await delivery(runtime, notice)
    return row if row is not None and row["status"] == "failed" else None
