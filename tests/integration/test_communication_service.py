"""The communication service on the real broker and database: notices for exactly the matching subscribers,
no second notice for a redelivered event, and signed webhooks retried until delivered or given up."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from fivecogs_communication import signing
from fivecogs_communication.app import definition
from fivecogs_communication.domain import notice_id
from fivecogs_communication.webhooks import WebhookSettings
from fivecogs_shared.contracts import events_topic
from fivecogs_shared.service import Runtime
from tests.support import PARTNER, Partner, Tap, data, ingest, of_type

pytestmark = pytest.mark.integration

SECRET = "integration-test-webhook-secret"
NOTICE = "th.fivecogs.communication.notice.published.v1"
SUBSCRIBED = "th.fivecogs.subscription.created.v1"
CERTIFIED = "th.fivecogs.knowledge.certification.accepted.v1"
LISTED = "th.fivecogs.marketing.listing.accepted.v1"
SETTLED = "th.fivecogs.marketing.settlement.recorded.v1"
DISTRIBUTED = "th.fivecogs.management.distribution.made.v1"
NST, CMI = "Nakhon Si Thammarat", "Chiang Mai"
# Webhook tests filter on a province other tests are unlikely to use: a fresh consumer group reads every older
# event on the shared topics, and each match there would be another POST to wait for.
QUIET = "Mae Hong Son"


def _service(**overrides: Any) -> Any:
    fast = {"poll_seconds": 0.1, "backoff_initial_seconds": 0.3, "backoff_cap_seconds": 2, "timeout_seconds": 2}
    return definition(_settings(**{**fast, **overrides}))


def _settings(**overrides: Any) -> WebhookSettings:
    # The webhook endpoints of these tests listen on 127.0.0.1: that takes the development-only setting.
    loopback = {"environment": "development", "allow_loopback": True}
    return WebhookSettings(secret=SECRET, lease_seconds=10, **{**loopback, **overrides})


# --- upstream events, as the other cogs publish them -------------------------------------------------------


def _certification(u: str, province: str) -> dict[str, Any]:
    return {
        "certificate_id": f"cert-{u}",
        "product_id": f"prod-{u}",
        "enterprise_id": f"ent-{u}",
        "province": province,
        "scheme": "otop_stars",
        "level": 4,
        "valid_from": "2026-01-01",
        "valid_until": "2027-01-01",
    }


def _listing(u: str, province: str) -> dict[str, Any]:
    return {
        "listing_id": f"lst-{u}",
        "product_id": f"prod-{u}",
        "enterprise_id": f"ent-{u}",
        "province": province,
        "channel": "online",
        "unit_price_thb": "120.00",
        "listed_at": "2026-07-01T10:00:00+07:00",
    }


def _settlement(u: str, province: str) -> dict[str, Any]:
    return {
        "settlement_id": f"ord-{u}:ent-{u}",
        "order_id": f"ord-{u}",
        "payment_id": f"pay-{u}",
        "enterprise_id": f"ent-{u}",
        "province": province,
        "revenue_thb": "360.00",
        "cost_thb": "100.00",
        "non_local_cost_thb": "10.00",
        "product_ids": [f"prod-{u}", f"prod2-{u}"],
        "settled_at": "2026-07-01T10:00:00+07:00",
    }


def _distribution(u: str, province: str) -> dict[str, Any]:
    return {
        "distribution_id": f"ord-{u}:ent-{u}",
        "settlement_id": f"ord-{u}:ent-{u}",
        "enterprise_id": f"ent-{u}",
        "province": province,
        "margin_thb": "260.00",
        "members_thb": "156.00",
        "community_fund_thb": "78.00",
        "reinvest_thb": "26.00",
        "members_share": "0.60",
        "community_fund_share": "0.30",
        "reinvest_share": "0.10",
        "product_ids": [f"prod-{u}"],
    }


@dataclass
class Upstream:
    """The three cogs communication listens to, each publishing on its own events topic."""

    knowledge: Partner
    marketing: Partner
    management: Partner

    async def certify(self, u: str, province: str, event_id: str | None = None) -> str:
        topic = events_topic("knowledge")
        return await self.knowledge.send(topic, CERTIFIED, _certification(u, province), f"prod-{u}", event_id=event_id)

    async def list(self, u: str, province: str) -> str:
        return await self.marketing.send(events_topic("marketing"), LISTED, _listing(u, province), f"prod-{u}")

    async def settle(self, u: str, province: str) -> str:
        return await self.marketing.send(events_topic("marketing"), SETTLED, _settlement(u, province), f"ent-{u}")

    async def distribute(self, u: str, province: str) -> str:
        topic = events_topic("management")
        return await self.management.send(topic, DISTRIBUTED, _distribution(u, province), f"ent-{u}")


@pytest.fixture
async def upstream(stack_env) -> Any:
    async with (
        Partner(stack_env.kafka, source="fivecogs/knowledge") as knowledge,
        Partner(stack_env.kafka, source="fivecogs/marketing") as marketing,
        Partner(stack_env.kafka, source="fivecogs/management") as management,
    ):
        yield Upstream(knowledge, marketing, management)


# --- helpers -----------------------------------------------------------------------------------------------


async def eventually(probe: Callable[[], Any], timeout: float = 30) -> Any:
    """The first truthy result of `probe` (sync or async), polled every 0.1 s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = probe()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s")
        await asyncio.sleep(0.1)


async def subscribe(
    partner: Partner, runtime: Runtime, *subscriptions: dict[str, Any], partner_id: str = PARTNER
) -> None:
    """Publish the subscriptions (on the partner's topic) and wait until they are stored: only later events
    notify them."""
    topic = ingest("communication", partner_id)
    for s in subscriptions:
        await partner.send(topic, SUBSCRIBED, {"network": "state", **s}, s["subscriber_id"])
    ids = [s["subscriber_id"] for s in subscriptions]

    async def stored() -> bool:
        count = await runtime.pool.fetchval("SELECT count(*) FROM subscribers WHERE subscriber_id = ANY($1)", ids)
        return bool(count == len(ids))

    await eventually(stored)


async def processed(runtime: Runtime, source: str, *event_ids: str) -> None:
    async def all_in_inbox() -> bool:
        count = await runtime.pool.fetchval(
            "SELECT count(*) FROM inbox WHERE source = $1 AND event_id = ANY($2)", source, list(event_ids)
        )
        return bool(count == len(event_ids))

    await eventually(all_in_inbox)


def notices_of(tap: Tap, prefix: str, *event_ids: str) -> list[dict[str, Any]]:
    """Our subscribers' notices about our events: a fresh consumer group also reads every older upstream event
    on the shared topics, and subscribers of every province rightly get notices about those too."""
    notices = [data(r) for r in tap.records if of_type(NOTICE)(r) and r.key.decode().startswith(prefix)]
    return [n for n in notices if n["subject_event_id"] in event_ids]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Hook:
    """A subscriber's webhook endpoint on 127.0.0.1: answers each notice with the scripted statuses, then 200."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def of(self, notice: str) -> list[Received]:
        return [r for r in self.received if r.headers.get("X-Fivecogs-Notice-Id") == notice]

    def answer(self, request: Received) -> int:
        earlier = len(self.of(request.headers.get("X-Fivecogs-Notice-Id", ""))) - 1
        return self.statuses[earlier] if earlier < len(self.statuses) else 200


@contextmanager
def webhook_server(*statuses: int) -> Iterator[Hook]:
    hook = Hook(list(statuses))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                request = Received(self.path, dict(self.headers.items()), body)
                hook.received.append(request)
                status = hook.answer(request)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def signed_by_secret(request: Received, subscriber_id: str) -> bool:
    try:  # as the partner verifies: the reference library and the secret of its subscription
        Webhook(signing.subscription_secret(SECRET, subscriber_id)).verify(request.body, dict(request.headers))
    except WebhookVerificationError:
        return False
    return True


async def delivery(runtime: Runtime, notice: str) -> Any:
    return await runtime.pool.fetchrow("SELECT * FROM webhook_deliveries WHERE notice_id = $1", notice)


async def attempts(runtime: Runtime, notice: str) -> list[Any]:
    return list(
        await runtime.pool.fetch("SELECT * FROM webhook_attempts WHERE notice_id = $1 ORDER BY attempt", notice)
    )


# --- tests -------------------------------------------------------------------------------------------------


async def test_notices_go_to_exactly_the_matching_subscribers(
    run_service, stack_env, partner: Partner, upstream: Upstream
) -> None:
    u = uuid.uuid4().hex[:8]
    async with Tap(stack_env.kafka, events_topic("communication")) as tap, run_service(_service()) as runtime:
        await subscribe(
            partner,
            runtime,
            {"subscriber_id": f"{u}-nst-cert", "provinces": [NST], "topics": ["certification"]},
            {"subscriber_id": f"{u}-all-cert", "topics": ["certification"], "network": "media"},
            {"subscriber_id": f"{u}-cmi-cert", "provinces": [CMI], "topics": ["certification"]},
            {"subscriber_id": f"{u}-listing", "topics": ["listing"]},
            {"subscriber_id": f"{u}-money", "provinces": [NST, "Bangkok"], "topics": ["sale", "distribution"]},
        )
        certified = await upstream.certify(u, NST)
        listed = await upstream.list(u, NST)
        sold = await upstream.settle(u, NST)
        sold_elsewhere = await upstream.settle(f"{u}x", CMI)
        distributed = await upstream.distribute(u, NST)
        await processed(runtime, "fivecogs/knowledge", certified)
        await processed(runtime, "fivecogs/marketing", listed, sold, sold_elsewhere)
        await processed(runtime, "fivecogs/management", distributed)
        ours = (certified, listed, sold, sold_elsewhere, distributed)
        await eventually(lambda: len(notices_of(tap, u, *ours)) >= 5)
        await asyncio.sleep(1.0)  # anything extra would have been relayed by now
        stored = await runtime.pool.fetch(
            "SELECT subscriber_id, subject_event_id FROM notices WHERE subject_event_id = ANY($1) "
            "AND starts_with(subscriber_id, $2)",
            list(ours),
            u,
        )

    published = notices_of(tap, u, *ours)
    expected = {
        (f"{u}-nst-cert", certified),
        (f"{u}-all-cert", certified),
        (f"{u}-listing", listed),
        (f"{u}-money", sold),
        (f"{u}-money", distributed),
    }
    assert {(n["subscriber_id"], n["subject_event_id"]) for n in published} == expected
    assert len(published) == 5
    assert {(r["subscriber_id"], r["subject_event_id"]) for r in stored} == expected

    by_subject = {(n["subscriber_id"], n["topic"]): n for n in published}
    cert = by_subject[(f"{u}-all-cert", "certification")]
    assert cert["notice_id"] == notice_id(f"{u}-all-cert", certified)
    assert (cert["subject_id"], cert["province"], cert["product_ids"]) == (f"cert-{u}", NST, [f"prod-{u}"])
    assert cert["network"] == "media"
    assert cert["summary"]
    sale = by_subject[(f"{u}-money", "sale")]
    assert (sale["subject_id"], sale["product_ids"]) == (f"ord-{u}:ent-{u}", [f"prod-{u}", f"prod2-{u}"])
    assert by_subject[(f"{u}-listing", "listing")]["subject_id"] == f"lst-{u}"
    assert by_subject[(f"{u}-money", "distribution")]["subject_id"] == f"ord-{u}:ent-{u}"


async def test_a_redelivered_event_yields_no_second_notice(
    run_service, stack_env, partner: Partner, upstream: Upstream
) -> None:
    u = uuid.uuid4().hex[:8]
    async with (
        Tap(stack_env.kafka, events_topic("communication")) as tap,
        run_service(_service()) as runtime,
        Partner(stack_env.kafka, source="fivecogs/knowledge-replay") as replay,
    ):
        await subscribe(partner, runtime, {"subscriber_id": f"{u}-sub", "topics": ["certification"]})
        first = await upstream.certify(u, NST)
        await tap.wait_for(lambda r: of_type(NOTICE)(r) and data(r)["subject_event_id"] == first)
        await upstream.certify(u, NST, event_id=first)  # the same record again: the inbox knows it
        # The same event id from a source the inbox has not seen: only the derived notice id catches it.
        await replay.send(events_topic("knowledge"), CERTIFIED, _certification(u, NST), f"prod-{u}", event_id=first)
        await processed(runtime, "fivecogs/knowledge-replay", first)
        later = await upstream.certify(u, NST)  # same key, same partition: processed after the repeats
        await tap.wait_for(lambda r: of_type(NOTICE)(r) and data(r)["subject_event_id"] == later)
        await asyncio.sleep(1.0)
        stored = await runtime.pool.fetchval(
            "SELECT count(*) FROM notices WHERE subject_event_id = $1 AND subscriber_id = $2", first, f"{u}-sub"
        )

    assert [n["subject_event_id"] for n in notices_of(tap, u, first, later)] == [first, later]
    assert stored == 1


async def test_webhook_is_posted_with_a_verifiable_signature(
    run_service, stack_env, partner: Partner, upstream: Upstream
) -> None:
    u = uuid.uuid4().hex[:8]
    with webhook_server() as hook:
        async with Tap(stack_env.kafka, events_topic("communication")) as tap, run_service(_service()) as runtime:
            await subscribe(
                partner,
                runtime,
                {
                    "subscriber_id": f"{u}-hook",
                    "topics": ["listing"],
                    "provinces": [QUIET],
                    "webhook_url": hook.url(f"/hooks/{u}"),
                },
                {"subscriber_id": f"{u}-plain", "topics": ["listing"], "provinces": [QUIET]},
            )
            listed = await upstream.list(u, QUIET)
            notice = notice_id(f"{u}-hook", listed)
            [record] = await tap.wait_for(lambda r: of_type(NOTICE)(r) and data(r)["notice_id"] == notice)
            done = await eventually(lambda: _delivered(runtime, notice))
            tried = await attempts(runtime, notice)
            plain = notice_id(f"{u}-plain", listed)
            queued = await runtime.pool.fetchval("SELECT count(*) FROM webhook_deliveries WHERE notice_id = $1", plain)

    [request] = hook.of(notice)
    assert request.path == f"/hooks/{u}"
    assert signed_by_secret(request, f"{u}-hook")
    assert not signed_by_secret(request, f"{u}-plain")  # each subscription has a secret of its own
    assert request.headers["webhook-id"] == notice
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == record.value  # the notice event's data, byte for byte
    assert json.loads(request.body)["subject_id"] == f"lst-{u}"
    assert (done["attempts"], done["last_status_code"]) == (1, 200)
    assert [(a["attempt"], a["status_code"], a["error"]) for a in tried] == [(1, 200, None)]
    assert queued == 0  # a subscriber without a webhook_url gets the notice on Kafka only


async def _delivered(runtime: Runtime, notice: str) -> Any:
    row = await delivery(runtime, notice)
    return row if row is not None and row["status"] == "delivered" else None


async def test_failed_posts_are_retried_with_backoff_until_delivered(
    run_service, stack_env, partner: Partner, upstream: Upstream
) -> None:
    u = uuid.uuid4().hex[:8]
    with webhook_server(500, 500) as hook:
        async with run_service(_service(backoff_initial_seconds=0.3)) as runtime:
            await subscribe(
                partner,
                runtime,
                {"subscriber_id": f"{u}-hook", "topics": ["sale"], "provinces": [QUIET], "webhook_url": hook.url("/h")},
            )
            sold = await upstream.settle(u, QUIET)
            notice = notice_id(f"{u}-hook", sold)
            done = await eventually(lambda: _delivered(runtime, notice))
            tried = await attempts(runtime, notice)

    assert [(a["attempt"], a["status_code"], a["error"]) for a in tried] == [
        (1, 500, None),
        (2, 500, None),
        (3, 200, None),
    ]
    assert done["attempts"] == 3
    assert done["finished_at"] is not None
    first_wait = (tried[1]["attempted_at"] - tried[0]["attempted_at"]).total_seconds()
    second_wait = (tried[2]["attempted_at"] - tried[1]["attempted_at"]).total_seconds()
    assert first_wait >= 0.3 * 0.9
    assert second_wait >= 0.6 * 0.9  # doubled
    received = hook.of(notice)
    assert len(received) == 3
    assert all(signed_by_secret(r, f"{u}-hook") for r in received)
    assert len({r.body for r in received}) == 1


async def test_delivery_gives_up_after_the_last_attempt_and_records_errors(
    run_service, stack_env, partner: Partner, upstream: Upstream
) -> None:
    u = uuid.uuid4().hex[:8]
    with webhook_server(*[503] * 10) as hook:
        async with run_service(_service(max_attempts=3, backoff_initial_seconds=0.1)) as runtime:
            unreachable = f"http://127.0.0.1:{closed_port()}/h"
            await subscribe(
                partner,
                runtime,
                {
                    "subscriber_id": f"{u}-busy",
                    "topics": ["distribution"],
                    "provinces": [QUIET],
                    "webhook_url": hook.url("/h"),
                },
                {
                    "subscriber_id": f"{u}-gone",
                    "topics": ["distribution"],
                    "provinces": [QUIET],
                    "webhook_url": unreachable,
                },
            )
            distributed = await upstream.distribute(u, QUIET)
            busy, gone = notice_id(f"{u}-busy", distributed), notice_id(f"{u}-gone", distributed)

            async def both_failed() -> bool:
                rows = [await delivery(runtime, n) for n in (busy, gone)]
                return all(row is not None and row["status"] == "failed" for row in rows)

            await eventually(both_failed)
            await asyncio.sleep(0.5)  # no attempt after giving up
            busy_tries, gone_tries = await attempts(runtime, busy), await attempts(runtime, gone)

    assert [(a["attempt"], a["status_code"]) for a in busy_tries] == [(1, 503), (2, 503), (3, 503)]
    assert len(hook.of(busy)) == 3
    assert [a["status_code"] for a in gone_tries] == [None, None, None]
    assert all("ConnectError" in a["error"] for a in gone_tries)
