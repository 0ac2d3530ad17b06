"""The management service on the real broker and database: distributions, the report, enterprises, journeys.

Topics are shared with every other test (and the service reads them from the beginning), so the service under
test applies only the events this test published: its handlers are wrapped to skip any other event id.
Everything else (decoding, inbox, outbox, topics, HTTP) is the real thing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fivecogs_management.app import DEFINITION
from fivecogs_shared.consumer import Handler
from fivecogs_shared.contracts import events_topic, internal_type
from fivecogs_shared.envelope import Envelope
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.provinces import region_of
from fivecogs_shared.service import Runtime, ServiceDefinition, http_app
from fivecogs_shared.uow import UnitOfWork
from tests.support import Partner, Tap, bearer, data, header, ingest, operator_token

pytestmark = pytest.mark.integration

POLICY_SET = "th.fivecogs.distribution.policy.set.v1"
DISTRIBUTION_MADE = internal_type("management", "distribution.made")
POLICY_PARTNER = "partner/test-partner"


class Chain:
    """Publishes as the four upstream cogs and a policy partner; remembers every event id it sent."""

    def __init__(self, kafka: KafkaAccess) -> None:
        self.kafka = kafka
        self.mine: set[str] = set()
        self.sent: dict[str, str] = {}  # event id -> ce_source
        self._partners: dict[str, Partner] = {}
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Chain:
        for cog in ("inputs", "knowledge", "marketing", "communication"):
            self._partners[cog] = await self._stack.enter_async_context(Partner(self.kafka, source=f"fivecogs/{cog}"))
        self._partners["policy"] = await self._stack.enter_async_context(Partner(self.kafka, POLICY_PARTNER))
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._stack.aclose()

    async def publish(
        self,
        cog: str,
        name: str,
        body: dict[str, Any],
        key: str,
        event_id: str | None = None,
        caused_by: str | None = None,
    ) -> str:
        """`caused_by`: the partner ce_id the cog would carry as the event's ce_correlationid."""
        return await self._send(cog, events_topic(cog), internal_type(cog, name), body, key, event_id, caused_by)

    async def set_policy(self, province: str, members: str, fund: str, reinvest: str) -> str:
        body = {
            "province": province,
            "members_share": members,
            "community_fund_share": fund,
            "reinvest_share": reinvest,
        }
        return await self._send("policy", ingest("management"), POLICY_SET, body, province, None)

    async def _send(
        self,
        who: str,
        topic: str,
        ce_type: str,
        body: dict[str, Any],
        key: str,
        event_id: str | None,
        caused_by: str | None = None,
    ) -> str:
        event_id = event_id or str(uuid.uuid4())
        self.mine.add(event_id)
        self.sent[event_id] = self._partners[who].source
        return await self._partners[who].send(topic, ce_type, body, key, event_id=event_id, correlation_id=caused_by)

    def isolated(self, definition: ServiceDefinition) -> ServiceDefinition:
        def only_mine(handler: Handler) -> Handler:
            async def handle(uow: UnitOfWork, event: Envelope) -> None:
                if event.id in self.mine:
                    await handler(uow, event)

            return handle

        return replace(definition, handlers={t: only_mine(h) for t, h in definition.handlers.items()})


@asynccontextmanager
async def _running(run_service, chain: Chain) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    async with run_service(chain.isolated(DEFINITION)) as runtime:
        transport = httpx.ASGITransport(app=http_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=bearer()) as client:
            yield runtime, client


async def _processed(runtime: Runtime, chain: Chain, *event_ids: str, timeout: float = 30) -> None:
    """Wait until the service committed these events. An event sent earlier on the same partition (same key)
    was committed in the same or an earlier transaction, so this is also a barrier for those."""
    sources = [chain.sent[event_id] for event_id in event_ids]

    async def done() -> bool:
        count = await runtime.pool.fetchval(
            "SELECT count(*) FROM inbox JOIN unnest($1::text[], $2::text[]) AS k(source, event_id) "
            "USING (source, event_id)",
            sources,
            list(event_ids),
        )
        return bool(count == len(event_ids))

    await _eventually(done, timeout, f"events {event_ids} processed")


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.1)


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _enterprise(enterprise_id: str, province: str, households: int, members: int = 10) -> dict[str, Any]:
    return {
        "enterprise_id": enterprise_id,
        "name": f"Group {enterprise_id}",
        "province": province,
        "region": region_of(province),
        "sector": "processing",
        "members": members,
        "target_poor_households": households,
    }


def _settlement(
    order_id: str, enterprise_id: str, province: str, money: tuple[str, str, str], products: list[str]
) -> dict[str, Any]:
    revenue, cost, non_local = money
    return {
        "settlement_id": f"{order_id}:{enterprise_id}",
        "order_id": order_id,
        "payment_id": f"pay-{order_id}",
        "enterprise_id": enterprise_id,
        "province": province,
        "revenue_thb": revenue,
        "cost_thb": cost,
        "non_local_cost_thb": non_local,
        "product_ids": products,
        "settled_at": datetime.now(UTC).isoformat(),
    }


def _notice(notice_id: str, subscriber_id: str, province: str, products: list[str]) -> dict[str, Any]:
    return {
        "notice_id": notice_id,
        "subscriber_id": subscriber_id,
        "network": "people",
        "topic": "sale",
        "province": province,
        "subject_id": _uid("subject"),
        "subject_event_id": _uid("subject-event"),
        "product_ids": products,
        "summary": "A sale was paid",
    }


def _row(area: str, counts: tuple[int, int, int, int], money: tuple[str, ...]) -> dict[str, Any]:
    enterprises, active, households, notices = counts
    revenue, cost, margin, members, fund, reinvest, local = money
    return {
        **({"province": area, "region": region_of(area)} if area in _PROVINCES else {"region": area}),
        "enterprises": enterprises,
        "active_enterprises": active,
        "revenue_thb": revenue,
        "cost_thb": cost,
        "margin_thb": margin,
        "members_income_thb": members,
        "community_fund_thb": fund,
        "reinvest_thb": reinvest,
        "local_value_thb": local,
        "target_poor_households_reached": households,
        "notices": notices,
    }


_PROVINCES = ("Nan", "Phitsanulok", "Satun")


async def test_settlements_are_distributed_once_and_reported_by_province_and_region(run_service, stack_env) -> None:
    e1, e2, e3, e4 = (_uid(f"ent{n}") for n in range(1, 5))
    o1, o2, o3, o4, o5 = (_uid(f"order{n}") for n in range(1, 6))
    subscriber, n1, n2, n3 = _uid("sub"), _uid("notice"), _uid("notice"), _uid("notice")
    async with (
        Chain(stack_env.kafka) as chain,
        Tap(stack_env.kafka, events_topic("management")) as tap,
        _running(run_service, chain) as (runtime, client),
    ):
        policy = await chain.set_policy("Nan", "0.5", "0.4", "0.1")
        await _processed(runtime, chain, policy)
        registered = [
            await chain.publish(
                "inputs", "enterprise.registered", _enterprise(enterprise_id, province, households), enterprise_id
            )
            for enterprise_id, province, households in ((e1, "Nan", 4), (e2, "Nan", 3), (e3, "Satun", 5))
        ]
        # A later registration updates the households the report counts.
        e1_update = await chain.publish("inputs", "enterprise.registered", _enterprise(e1, "Nan", 6, 12), e1)

        s1 = _settlement(o1, e1, "Nan", ("1000.05", "400.00", "100.00"), ["p-a", "p-b"])
        s1_event = await chain.publish("marketing", "settlement.recorded", s1, e1)
        await chain.publish("marketing", "settlement.recorded", s1, e1, event_id=s1_event)  # redelivered
        await chain.publish("marketing", "settlement.recorded", s1, e1)  # replayed under a new event id
        s4_event = await chain.publish(
            "marketing", "settlement.recorded", _settlement(o4, e1, "Nan", ("50.00", "20.00", "0.00"), ["p-a"]), e1
        )
        loss = _settlement(o2, e3, "Satun", ("250.00", "300.00", "50.00"), ["p-c"])
        await chain.publish("marketing", "settlement.recorded", loss, e3)
        s3_event = await chain.publish(
            "marketing", "settlement.recorded", _settlement(o3, e3, "Satun", ("100.05", "0.00", "0.00"), ["p-c"]), e3
        )

        await chain.publish("communication", "notice.published", _notice(n1, subscriber, "Nan", []), subscriber)
        await chain.publish("communication", "notice.published", _notice(n1, subscriber, "Nan", []), subscriber)
        await chain.publish("communication", "notice.published", _notice(n2, subscriber, "Nan", []), subscriber)
        n3_event = await chain.publish(
            "communication", "notice.published", _notice(n3, subscriber, "Satun", []), subscriber
        )

        # A sale reaches management before the registration of its enterprise.
        early = _settlement(o5, e4, "Phitsanulok", ("80.00", "100.00", "30.00"), ["p-d"])
        early_event = await chain.publish("marketing", "settlement.recorded", early, e4)
        await _processed(runtime, chain, early_event)
        before = (await client.get("/v1/report/provinces")).json()
        e4_event = await chain.publish("inputs", "enterprise.registered", _enterprise(e4, "Phitsanulok", 2), e4)

        # Each key may sit on its own partition: wait for the last event of every one the report counts.
        await _processed(runtime, chain, *registered, e1_update, s4_event, s3_event, n3_event, e4_event)
        await tap.wait_for(lambda r: r.key == e1.encode() and data(r)["settlement_id"] == f"{o4}:{e1}")
        await tap.wait_for(lambda r: r.key == e3.encode() and data(r)["settlement_id"] == f"{o3}:{e3}")
        provinces = (await client.get("/v1/report/provinces")).json()
        regions = (await client.get("/v1/report/regions")).json()
        enterprise = await client.get(f"/v1/enterprises/{e1}")
        unknown = await client.get(f"/v1/enterprises/{_uid('nobody')}")

    made = {data(r)["settlement_id"]: r for r in tap.records if r.key in (e1.encode(), e3.encode(), e4.encode())}
    assert sorted(made) == sorted([f"{o1}:{e1}", f"{o4}:{e1}", f"{o3}:{e3}"])  # no loss is distributed
    assert len([r for r in tap.records if r.key == e1.encode()]) == 2  # s1 once despite redelivery and replay
    first = made[f"{o1}:{e1}"]
    assert header(first, "ce_type") == DISTRIBUTION_MADE
    assert data(first) == {
        "distribution_id": f"{o1}:{e1}",
        "settlement_id": f"{o1}:{e1}",
        "enterprise_id": e1,
        "province": "Nan",
        "margin_thb": "600.05",
        "members_thb": "300.03",  # 300.025 half up
        "community_fund_thb": "240.01",  # the remainder
        "reinvest_thb": "60.01",  # 60.005 half up
        "members_share": "0.5",
        "community_fund_share": "0.4",
        "reinvest_share": "0.1",
        "product_ids": ["p-a", "p-b"],
    }
    by_default = data(made[f"{o3}:{e3}"])  # Satun has no policy of its own
    assert (by_default["members_thb"], by_default["community_fund_thb"], by_default["reinvest_thb"]) == (
        "60.03",
        "30.01",
        "10.01",
    )

    assert "Phitsanulok" not in [row["province"] for row in before["rows"]]
    nan = _row("Nan", (2, 1, 6, 2), ("1050.05", "420.00", "630.05", "315.03", "252.01", "63.01", "950.05"))
    phitsanulok = _row("Phitsanulok", (1, 1, 2, 0), ("80.00", "100.00", "-20.00", "0.00", "0.00", "0.00", "50.00"))
    satun = _row("Satun", (1, 1, 5, 1), ("350.05", "300.00", "50.05", "60.03", "30.01", "10.01", "300.05"))
    totals = _row("total", (4, 3, 13, 3), ("1480.10", "820.00", "660.10", "375.06", "282.02", "73.02", "1300.10"))
    del totals["region"]
    assert provinces == {"rows": [nan, phitsanulok, satun], "totals": totals}
    north = _row("north", (3, 2, 8, 2), ("1130.05", "520.00", "610.05", "315.03", "252.01", "63.01", "1000.05"))
    south = _row("south", (1, 1, 5, 1), ("350.05", "300.00", "50.05", "60.03", "30.01", "10.01", "300.05"))
    assert regions == {"rows": [north, south], "totals": totals}

    assert enterprise.status_code == 200
    assert enterprise.json() == {
        "enterprise_id": e1,
        "name": f"Group {e1}",
        "province": "Nan",
        "region": "north",
        "sector": "processing",
        "members": 12,
        "target_poor_households": 6,
        "settlements": 2,
        "revenue_thb": "1050.05",
        "cost_thb": "420.00",
        "margin_thb": "630.05",
        "members_income_thb": "315.03",
        "community_fund_thb": "252.01",
        "reinvest_thb": "63.01",
        "local_value_thb": "950.05",
    }
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"


async def test_a_product_journey_tells_every_step_in_order(run_service, stack_env) -> None:
    """Each step also names the partner event that caused it: the ce_correlationid every cog carries from the
    partner's ce_id to what it emits (here set as the cogs would)."""
    enterprise_id, batch_id, product_id = _uid("ent"), _uid("batch"), _uid("prod")
    o1, o2, subscriber = _uid("order"), _uid("order"), _uid("sub")
    # The ce_id of each partner event behind the chain's events.
    partner = {
        name: f"partner-{name}-{uuid.uuid4()}"
        for name in ("registration", "d-1", "d-2", "batch", "certification", "listing", o1, "cancel", o2, "payment")
    }
    facts = {
        "batch_id": batch_id,
        "enterprise_id": enterprise_id,
        "province": "Nan",
        "sector": "processing",
        "product_id": product_id,
        "product_name": "Indigo scarf",
        "quantity": 40,
        "unit": "piece",
        "produced_on": "2026-06-29",
        "cost_thb": "1550.75",
        "non_local_cost_thb": "300.25",
        "delivery_ids": ["d-1", "d-2"],
    }
    async with (
        Chain(stack_env.kafka) as chain,
        Tap(stack_env.kafka, events_topic("management")) as tap,
        _running(run_service, chain) as (runtime, client),
    ):
        sent = [
            await chain.publish(
                "inputs",
                "enterprise.registered",
                _enterprise(enterprise_id, "Nan", 3),
                enterprise_id,
                caused_by=partner["registration"],
            )
        ]
        for n, (cost, local) in enumerate((("1250.50", True), ("300.25", False)), start=1):
            delivery = {
                "delivery_id": f"d-{n}",
                "batch_id": batch_id,
                "enterprise_id": enterprise_id,
                "province": "Nan",
                "item": "indigo dye",
                "quantity": "2.5",
                "unit": "kg",
                "cost_thb": cost,
                "local_source": local,
            }
            sent.append(
                await chain.publish("inputs", "input.delivered", delivery, batch_id, caused_by=partner[f"d-{n}"])
            )
        sent.append(await chain.publish("inputs", "batch.produced", facts, batch_id, caused_by=partner["batch"]))
        certificate = {
            "certificate_id": _uid("cert"),
            "product_id": product_id,
            "enterprise_id": enterprise_id,
            "province": "Nan",
            "scheme": "otop_stars",
            "level": 4,
            "valid_from": "2026-01-01",
            "valid_until": "2027-12-31",
        }
        sent.append(
            await chain.publish(
                "knowledge", "certification.accepted", certificate, product_id, caused_by=partner["certification"]
            )
        )
        held = [{"certificate_id": certificate["certificate_id"], "scheme": "otop_stars", "level": 4}]
        assessment = {**facts, "certifications": held, "trainings_completed": 2}
        sent.append(
            await chain.publish("knowledge", "batch.assessed", assessment, product_id, caused_by=partner["batch"])
        )
        listing = {
            "listing_id": _uid("listing"),
            "product_id": product_id,
            "enterprise_id": enterprise_id,
            "province": "Nan",
            "channel": "retail",
            "unit_price_thb": "250.00",
            "listed_at": datetime.now(UTC).isoformat(),
        }
        sent.append(
            await chain.publish("marketing", "listing.accepted", listing, product_id, caused_by=partner["listing"])
        )
        for order_id in (o1, o2):
            order = _order(order_id, enterprise_id, product_id, batch_id)
            sent.append(
                await chain.publish("marketing", "order.accepted", order, order_id, caused_by=partner[order_id])
            )
            if order_id == o1:
                cancel = {"order_id": o1, "reason": "buyer changed mind"}
                sent.append(
                    await chain.publish("marketing", "order.cancelled", cancel, o1, caused_by=partner["cancel"])
                )
        sale = _settlement(o2, enterprise_id, "Nan", ("750.00", "116.31", "22.52"), [product_id])
        sent.append(
            await chain.publish("marketing", "settlement.recorded", sale, enterprise_id, caused_by=partner["payment"])
        )
        [distribution] = await tap.wait_for(lambda r: r.key == enterprise_id.encode())
        notice = _notice(_uid("notice"), subscriber, "Nan", [product_id])
        last = await chain.publish(
            "communication", "notice.published", notice, subscriber, caused_by=partner["payment"]
        )
        sent.append(last)

        await _processed(runtime, chain, *sent)
        response = await client.get(f"/v1/products/{product_id}/journey")
        unknown = await client.get(f"/v1/products/{_uid('nothing')}/journey")

    assert response.status_code == 200
    steps = response.json()["steps"]
    assert [s["step"] for s in steps] == [
        "delivered",
        "delivered",
        "produced",
        "assessed",  # the certification
        "assessed",  # the batch
        "listed",
        "ordered",
        "ordered",  # the cancellation
        "ordered",
        "settled",
        "distributed",
        "noticed",
    ]
    assert [s["event_id"] for s in steps] == [*sent[1:-1], header(distribution, "ce_id"), last]
    assert [s["partner_event_id"] for s in steps] == [
        partner[name]
        for name in ("d-1", "d-2", "batch", "certification", "batch", "listing", o1, "cancel", o2)
        + ("payment",) * 3  # the settlement, the distribution of its margin and the notice of the sale
    ]
    assert header(distribution, "ce_correlationid") == partner["payment"]
    assert {s["where"] for s in steps} == {"Nan"}  # orders carry no province: the enterprise's
    moments = [datetime.fromisoformat(s["when"]) for s in steps]
    assert moments == sorted(moments)
    assert steps[0]["what"] == f"2.5 kg of indigo dye delivered to batch {batch_id} for 1250.50 THB"
    assert steps[2]["what"] == (
        f"{enterprise_id} produced 40 piece of Indigo scarf in batch {batch_id} on 2026-06-29, at a cost of 1550.75 THB"
    )
    assert steps[7]["what"] == f"Order {o1} cancelled: buyer changed mind"
    assert steps[10]["what"] == (
        "Margin of 633.69 THB returned to the locality: 380.21 THB to members, "
        "190.11 THB to the community fund, 63.37 THB reinvested"
    )
    assert all(s["why"] for s in steps)
    assert unknown.status_code == 404


def _order(order_id: str, enterprise_id: str, product_id: str, batch_id: str) -> dict[str, Any]:
    portion = {"batch_id": batch_id, "quantity": 3, "cost_thb": "116.31", "non_local_cost_thb": "22.52"}
    line = {
        "product_id": product_id,
        "enterprise_id": enterprise_id,
        "quantity": 3,
        "unit_price_thb": "250.00",
        "portions": [portion],
    }
    return {
        "order_id": order_id,
        "buyer_id": "buyer-1",
        "channel": "retail",
        "placed_at": datetime.now(UTC).isoformat(),
        "total_thb": "750.00",
        "lines": [line],
    }


ROTATED = "management-rotated-token-0002"  # the token being retired, still accepted while it is listed


async def test_the_management_api_needs_an_operator_token(run_service, stack_env) -> None:
    """The real management API (its routes, the shared middleware, the settings): one current token, one being
    retired; every read refused without either, the probes open."""
    paths = ["/v1/report/provinces", "/v1/report/regions", f"/v1/enterprises/{_uid('e')}", "/v1/products/p/journey"]
    skip_all = Chain(stack_env.kafka).isolated(DEFINITION)  # applies none of the topics' other events
    async with run_service(skip_all, operator_tokens=[operator_token(), ROTATED]) as runtime:
        transport = httpx.ASGITransport(app=http_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def status(path: str, authorization: str | None = None) -> tuple[int, Any]:
                headers = {"Authorization": authorization} if authorization else {}
                response = await client.get(path, headers=headers)
                return response.status_code, response.json() if response.status_code == 401 else None

            for path in paths:
                assert await status(path) == (401, {"error": "missing bearer token"}), path
                assert await status(path, "Bearer wrong") == (401, {"error": "invalid bearer token"}), path
                assert await status(path, f"Bearer {operator_token()[:-2]}") == (401, {"error": "invalid bearer token"})
                assert await status(path, f"Basic {operator_token()}") == (401, {"error": "missing bearer token"})
            assert (await status("/v1/report/provinces", f"Bearer {operator_token()}"))[0] == 200
            assert (await status("/v1/report/regions", f"bearer {ROTATED}"))[0] == 200
            assert (await status(f"/v1/enterprises/{_uid('nobody')}", f"Bearer {ROTATED}"))[0] == 404  # past the door
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200
            assert (await client.get("/readyz")).status_code != 401  # 503 while the group forms, but open


async def test_a_management_service_without_tokens_is_locked(run_service, stack_env, monkeypatch) -> None:
    token = operator_token()
    monkeypatch.setenv("FIVECOGS_OPERATOR_TOKENS", "")  # as a deployment that never set it
    async with run_service(Chain(stack_env.kafka).isolated(DEFINITION)) as runtime:
        assert runtime.settings.operator_tokens == ()
        transport = httpx.ASGITransport(app=http_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for authorization in (None, f"Bearer {token}"):
                headers = {"Authorization": authorization} if authorization else {}
                response = await client.get("/v1/report/provinces", headers=headers)
                assert response.status_code == 401
                assert "no operator token is configured" in response.json()["error"]
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200
