"""SQL of the management service (schema `management`): the facts it records as events arrive, kept for a
batch in `ManagementState` and written set-wise at its end.

Facts are inserted with ON CONFLICT, keyed by the id the upstream cog derived, so an event replayed under a
new event id still lands on the row it made the first time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from fivecogs_management.domain import Distribution, Policy
from fivecogs_management.journey import Step
from fivecogs_shared.batchstate import Tables, named
from fivecogs_shared.contracts import internal
from fivecogs_shared.db import Connection
from fivecogs_shared.envelope import Envelope
from fivecogs_shared.provinces import region_of


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


ENTERPRISES, BATCHES, STEPS, ORDER_LINES = "enterprises", "batches", "steps", "order_lines"
SETTLEMENTS, DISTRIBUTIONS, NOTICES, POLICIES = "settlements", "distributions", "notices", "policies"


class ManagementState(Tables):
    """The facts of a batch, by the keys Postgres dedupes them on; what was recorded before (settlements,
    notices, an order's lines) and each province's policy history, read for the whole batch at once."""

    async def prefetch(self, events: Sequence[Envelope]) -> None:
        await self._load_recorded(SETTLEMENTS, "settlements", "settlement_id", named(events, "settlement_id"))
        await self._load_recorded(NOTICES, "notices", "notice_id", named(events, "notice_id"))
        await self._load_policies(named([e for e in events if hasattr(e.data, "settlement_id")], "province"))
        await self._load_order_lines(named([e for e in events if hasattr(e.data, "reason")], "order_id"))

    def save_enterprise(self, e: internal.EnterpriseRegistered) -> None:
        """The latest registration wins: members and households change as TPMAP figures are updated."""
        self.put(ENTERPRISES, e.enterprise_id, e)

    def save_batch(self, batch_id: str, product_id: str) -> None:
        self._first(BATCHES, batch_id, (batch_id, product_id))

    def save_steps(self, steps: Iterable[Step]) -> None:
        for step in steps:
            row = _step_row(step)
            self._first(STEPS, (str(row[0]), str(row[1]), step.at.event_id), row)  # the table's key

    def save_order_lines(self, order: internal.OrderAccepted) -> None:
        """Each product's line once: the first one recorded stays (a replay names the same enterprise)."""
        lines = {product: enterprise for _, product, enterprise in self.get(ORDER_LINES, order.order_id) or ()}
        for line in order.lines:
            lines.setdefault(line.product_id, line.enterprise_id)
        self.put(ORDER_LINES, order.order_id, tuple((order.order_id, p, e) for p, e in sorted(lines.items())))

    async def order_lines(self, order_id: str) -> list[tuple[str, str]]:
        await self._load_order_lines([order_id])
        return [(product, enterprise) for _, product, enterprise in self.get(ORDER_LINES, order_id)]

    async def record_settlement(self, s: internal.SettlementRecorded, event_id: str) -> bool:
        """False when this settlement was recorded already: it must not be counted or distributed twice."""
        await self._load_recorded(SETTLEMENTS, "settlements", "settlement_id", [s.settlement_id])
        return self._first(SETTLEMENTS, s.settlement_id, _settlement_row(s, event_id))

    async def record_notice(self, n: internal.NoticePublished, event_id: str) -> bool:
        """False when the notice was counted already."""
        await self._load_recorded(NOTICES, "notices", "notice_id", [n.notice_id])
        return self._first(NOTICES, n.notice_id, (n.notice_id, n.province, region_of(n.province), n.topic, event_id))

    def save_distribution(
        self, s: internal.SettlementRecorded, d: Distribution, event_id: str, effective_at: datetime | None
    ) -> None:
        self.put(DISTRIBUTIONS, s.settlement_id, _distribution_row(s, d, event_id, effective_at))

    async def policy_at(self, province: str, moment: datetime) -> tuple[Policy, datetime] | None:
        """The province's policy in force at a moment and when it took effect (None: none set by then)."""
        await self._load_policies([province])
        history = [p for p in self.get(POLICIES, province) if p[0] <= moment]
        return None if not history else (history[-1][2], history[-1][3])

    def forget_policies(self, province: str) -> None:
        """A policy was set (by SQL, after a flush): the province's history is read again when next asked."""
        self.forget(POLICIES, province)

    def _first(self, table: str, key: str | tuple[str, ...], row: tuple[object, ...]) -> bool:
        """Insert-only facts: the first version wins (the ON CONFLICT DO NOTHING of the write)."""
        if self.get(table, key) is not None:
            return False
        self.put(table, key, row)
        return True

    async def _load_recorded(self, table: str, sql_table: str, column: str, ids: Iterable[str]) -> None:
        sql = f"SELECT {column} FROM {sql_table} WHERE {column} = ANY($1::text[])"
        await self.fetch_missing(table, ids, sql, column)

    async def _load_policies(self, provinces: Iterable[str]) -> None:
        if wanted := self.missing(POLICIES, provinces):
            rows = await self.conn.fetch(
                "SELECT province, effective_at, received, members_share, community_fund_share, reinvest_share "
                "FROM policy_history WHERE province = ANY($1::text[]) ORDER BY province, effective_at, received",
                wanted,
            )
            history: dict[str, list[tuple[datetime, int, Policy, datetime]]] = {p: [] for p in wanted}
            for r in rows:
                policy = Policy(r["members_share"], r["community_fund_share"], r["reinvest_share"])
                since = r["effective_at"]  # '-infinity' (the default's row) arrives as a naive datetime(1, 1, 1)
                when = since if since.tzinfo else since.replace(tzinfo=UTC)
                history[r["province"]].append((when, r["received"], policy, since))
            self.loaded(POLICIES, {p: tuple(h) for p, h in history.items()})

    async def _load_order_lines(self, order_ids: Iterable[str]) -> None:
        if wanted := self.missing(ORDER_LINES, order_ids):
            rows = await self.conn.fetch(
                "SELECT order_id, product_id, enterprise_id FROM order_lines WHERE order_id = ANY($1::text[]) "
                "ORDER BY order_id, product_id",
                wanted,
            )
            lines: dict[str, list[tuple[str, str, str]]] = {o: [] for o in wanted}
            for r in rows:
                lines[r["order_id"]].append((r["order_id"], r["product_id"], r["enterprise_id"]))
            self.loaded(ORDER_LINES, {o: tuple(found) for o, found in lines.items()})

    async def flush(self) -> None:
        await self.write(_SAVE_ENTERPRISE, [_enterprise_row(e) for e in self.changed(ENTERPRISES)])
        await self.write(_SAVE_BATCH, self.changed(BATCHES))
        await self.write(_SAVE_STEP, self.changed(STEPS))
        await self.write(_SAVE_ORDER_LINE, [line for lines in self.changed(ORDER_LINES) for line in lines])
        await self.write(_RECORD_SETTLEMENT, self.changed(SETTLEMENTS))  # settlements before distributions
        await self.write(_SAVE_DISTRIBUTION, self.changed(DISTRIBUTIONS))
        await self.write(_RECORD_NOTICE, self.changed(NOTICES))
        self.written()


def _enterprise_row(e: internal.EnterpriseRegistered) -> tuple[object, ...]:
    return (e.enterprise_id, e.name, e.province, e.region, e.sector, e.members, e.target_poor_households)


def _settlement_row(s: internal.SettlementRecorded, event_id: str) -> tuple[object, ...]:
    return (
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


def _distribution_row(
    s: internal.SettlementRecorded, d: Distribution, event_id: str, effective_at: datetime | None
) -> tuple[object, ...]:
    return (
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


_SAVE_ENTERPRISE = (
    "INSERT INTO enterprises (enterprise_id, name, province, region, sector, members, target_poor_households) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (enterprise_id) DO UPDATE SET name = EXCLUDED.name, "
    "province = EXCLUDED.province, region = EXCLUDED.region, sector = EXCLUDED.sector, "
    "members = EXCLUDED.members, target_poor_households = EXCLUDED.target_poor_households"
)
_SAVE_BATCH = "INSERT INTO batches (batch_id, product_id) VALUES ($1, $2) ON CONFLICT (batch_id) DO NOTHING"
_SAVE_STEP = (
    "INSERT INTO journey_steps (subject_kind, subject_id, event_id, step, what, why, occurred_at, province, "
    "enterprise_id, partner_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
)
_SAVE_ORDER_LINE = (
    "INSERT INTO order_lines (order_id, product_id, enterprise_id) VALUES ($1, $2, $3) "
    "ON CONFLICT (order_id, product_id) DO NOTHING"
)
_RECORD_SETTLEMENT = (
    "INSERT INTO settlements (settlement_id, order_id, enterprise_id, province, revenue_thb, cost_thb, "
    "non_local_cost_thb, product_ids, settled_at, event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
    "ON CONFLICT (settlement_id) DO NOTHING"
)
_SAVE_DISTRIBUTION = (
    "INSERT INTO distributions (distribution_id, settlement_id, enterprise_id, province, margin_thb, "
    "members_thb, community_fund_thb, reinvest_thb, members_share, community_fund_share, reinvest_share, "
    "event_id, policy_effective_at) VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
)
_RECORD_NOTICE = (
    "INSERT INTO notices (notice_id, province, region, topic, event_id) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (notice_id) DO NOTHING"
)
