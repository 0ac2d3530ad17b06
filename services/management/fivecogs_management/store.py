"""SQL of the management service (schema `management`): the facts it records as events arrive.

Facts are inserted with ON CONFLICT, keyed by the id the upstream cog derived, so an event replayed under a
new event id still lands on the row it made the first time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from fivecogs_management.domain import Distribution, Policy
from fivecogs_management.journey import Step
from fivecogs_shared.contracts import internal
from fivecogs_shared.db import Connection
from fivecogs_shared.provinces import region_of


async def policy_at(conn: Connection, province: str, moment: datetime) -> tuple[Policy, datetime] | None:
    """The province's policy in force at a moment and when it took effect (None: none set by then)."""
    row = await conn.fetchrow(
        "SELECT members_share, community_fund_share, reinvest_share, effective_at FROM policy_history "
        "WHERE province = $1 AND effective_at <= $2 ORDER BY effective_at DESC, received DESC LIMIT 1",
        province,
        moment,
    )
    if row is None:
        return None
    return Policy(row["members_share"], row["community_fund_share"], row["reinvest_share"]), row["effective_at"]


async def save_policy(conn: Connection, province: str, policy: Policy, effective_at: datetime, event_id: str) -> None:
    await conn.execute(
        "INSERT INTO policy_history (province, effective_at, event_id, members_share, community_fund_share, "
        "reinvest_share) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        province,
        effective_at,
        event_id,
        policy.members_share,
        policy.community_fund_share,
        policy.reinvest_share,
    )


class SettledFigures(NamedTuple):
    settlement_id: str
    revenue_thb: Decimal
    cost_thb: Decimal
    settled_at: datetime


async def settlements_since(conn: Connection, province: str, moment: datetime) -> list[SettledFigures]:
    """Settlements of a province at or after a moment: those a policy taking effect then may concern."""
    rows = await conn.fetch(
        "SELECT settlement_id, revenue_thb, cost_thb, settled_at FROM settlements "
        "WHERE province = $1 AND settled_at >= $2 ORDER BY settled_at, settlement_id FOR UPDATE",
        province,
        moment,
    )
    return [SettledFigures(**dict(row)) for row in rows]


async def redistribute(conn: Connection, settlement_id: str, d: Distribution, effective_at: datetime) -> None:
    await conn.execute(
        "UPDATE distributions SET members_thb = $2, community_fund_thb = $3, reinvest_thb = $4, "
        "members_share = $5, community_fund_share = $6, reinvest_share = $7, policy_effective_at = $8 "
        "WHERE settlement_id = $1",
        settlement_id,
        d.members_thb,
        d.community_fund_thb,
        d.reinvest_thb,
        d.policy.members_share,
        d.policy.community_fund_share,
        d.policy.reinvest_share,
        effective_at,
    )


async def save_enterprise(conn: Connection, e: internal.EnterpriseRegistered) -> None:
    """The latest registration wins: members and households change as TPMAP figures are updated."""
    await conn.execute(
        "INSERT INTO enterprises (enterprise_id, name, province, region, sector, members, target_poor_households) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (enterprise_id) DO UPDATE SET name = EXCLUDED.name, "
        "province = EXCLUDED.province, region = EXCLUDED.region, sector = EXCLUDED.sector, "
        "members = EXCLUDED.members, target_poor_households = EXCLUDED.target_poor_households",
        e.enterprise_id,
        e.name,
        e.province,
        e.region,
        e.sector,
        e.members,
        e.target_poor_households,
    )


async def record_settlement(conn: Connection, s: internal.SettlementRecorded, event_id: str) -> bool:
    """False when this settlement was recorded already: it must not be counted or distributed twice."""
    recorded = await conn.fetchval(
        "INSERT INTO settlements (settlement_id, order_id, enterprise_id, province, revenue_thb, cost_thb, "
        "non_local_cost_thb, product_ids, settled_at, event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT (settlement_id) DO NOTHING RETURNING true",
        s.settlement_id,
        s.order_id,
        s.enterprise_id,
        s.province,
        s.revenue_thb,
        s.cost_thb,
        s.non_local_cost_thb,
        s.product_ids,
        s.settled_at,
        event_id,
    )
    return bool(recorded)


async def save_distribution(
    conn: Connection, s: internal.SettlementRecorded, d: Distribution, event_id: str, effective_at: datetime | None
) -> None:
    await conn.execute(
        "INSERT INTO distributions (distribution_id, settlement_id, enterprise_id, province, margin_thb, "
        "members_thb, community_fund_thb, reinvest_thb, members_share, community_fund_share, reinvest_share, "
        "event_id, policy_effective_at) VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        s.settlement_id,
        s.enterprise_id,
        s.province,
        d.margin_thb,
        d.members_thb,
        d.community_fund_thb,
        d.reinvest_thb,
        d.policy.members_share,
        d.policy.community_fund_share,
        d.policy.reinvest_share,
        event_id,
        effective_at,
    )


async def record_notice(conn: Connection, n: internal.NoticePublished, event_id: str) -> bool:
    """False when the notice was counted already."""
    recorded = await conn.fetchval(
        "INSERT INTO notices (notice_id, province, region, topic, event_id) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (notice_id) DO NOTHING RETURNING true",
        n.notice_id,
        n.province,
        region_of(n.province),
        n.topic,
        event_id,
    )
    return bool(recorded)


async def save_batch(conn: Connection, batch_id: str, product_id: str) -> None:
    await conn.execute(
        "INSERT INTO batches (batch_id, product_id) VALUES ($1, $2) ON CONFLICT (batch_id) DO NOTHING",
        batch_id,
        product_id,
    )


async def save_order_lines(conn: Connection, order: internal.OrderAccepted) -> None:
    await conn.executemany(
        "INSERT INTO order_lines (order_id, product_id, enterprise_id) VALUES ($1, $2, $3) "
        "ON CONFLICT (order_id, product_id) DO NOTHING",
        [(order.order_id, line.product_id, line.enterprise_id) for line in order.lines],
    )


async def order_lines(conn: Connection, order_id: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT product_id, enterprise_id FROM order_lines WHERE order_id = $1 ORDER BY product_id", order_id
    )
    return [(row["product_id"], row["enterprise_id"]) for row in rows]


async def save_steps(conn: Connection, steps: list[Step]) -> None:
    await conn.executemany(
        "INSERT INTO journey_steps (subject_kind, subject_id, event_id, step, what, why, occurred_at, province, "
        "enterprise_id, partner_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        [_step_row(step) for step in steps],
    )


def _step_row(step: Step) -> tuple[object, ...]:
    kind, subject = ("product", step.product_id) if step.product_id is not None else ("batch", step.batch_id)
    return (
        kind,
        subject,
        step.at.event_id,
        step.step,
        step.what,
        step.why,
        step.at.when,
        step.province,
        step.enterprise_id,
        step.at.partner_event_id,
    )
