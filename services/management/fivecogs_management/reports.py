"""Read models of management, computed at query time from the recorded facts with SQL aggregates.

Settlements and distributions are grouped by the province of their enterprise's (latest) registration, so a
sale recorded before its enterprise's registration arrived is counted as soon as that registration does."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from fivecogs_management.journey import STEPS
from fivecogs_shared.db import Connection

Area = Literal["province", "region"]

MONEY_FIELDS = (
    "revenue_thb",
    "cost_thb",
    "margin_thb",
    "members_income_thb",
    "community_fund_thb",
    "reinvest_thb",
    "local_value_thb",
)
COUNT_FIELDS = ("enterprises", "active_enterprises", "target_poor_households_reached", "notices")

# Per enterprise: its settlements and distributions summed (NULL when it has none).
_PER_ENTERPRISE = """
    WITH sales AS (
        SELECT enterprise_id, count(*) AS settlements, sum(revenue_thb) AS revenue, sum(cost_thb) AS cost,
               sum(non_local_cost_thb) AS non_local_cost
        FROM settlements GROUP BY enterprise_id
    ), shares AS (
        SELECT enterprise_id, sum(members_thb) AS members, sum(community_fund_thb) AS community_fund,
               sum(reinvest_thb) AS reinvest
        FROM distributions GROUP BY enterprise_id
    )
"""

_MONEY_SUMS = """
    coalesce(sum(s.revenue), 0) AS revenue_thb,
    coalesce(sum(s.cost), 0) AS cost_thb,
    coalesce(sum(s.revenue), 0) - coalesce(sum(s.cost), 0) AS margin_thb,
    coalesce(sum(d.members), 0) AS members_income_thb,
    coalesce(sum(d.community_fund), 0) AS community_fund_thb,
    coalesce(sum(d.reinvest), 0) AS reinvest_thb,
    coalesce(sum(s.revenue), 0) - coalesce(sum(s.non_local_cost), 0) AS local_value_thb
"""

# `{area}` is "province" or "region" (never user input). COLLATE "C": names sort by code point, as everywhere
# else, not by the server locale's rules (which ignore spaces).
_AREA_REPORT = (
    _PER_ENTERPRISE
    + """
    , notice_counts AS (SELECT {area}, count(*) AS notices FROM notices GROUP BY {area})
    SELECT e.{area} AS {area}, {extra}
        count(*) AS enterprises,
        count(*) FILTER (WHERE s.settlements > 0) AS active_enterprises,
        {money},
        coalesce(sum(e.target_poor_households) FILTER (WHERE s.settlements > 0), 0)
            AS target_poor_households_reached,
        coalesce(max(n.notices), 0) AS notices
    FROM enterprises e
    LEFT JOIN sales s USING (enterprise_id)
    LEFT JOIN shares d USING (enterprise_id)
    LEFT JOIN notice_counts n ON n.{area} = e.{area}
    GROUP BY e.{area}
    ORDER BY e.{area} COLLATE "C"
"""
)

_REPORTS = {
    "province": _AREA_REPORT.format(area="province", extra="min(e.region) AS region,", money=_MONEY_SUMS),
    "region": _AREA_REPORT.format(area="region", extra="", money=_MONEY_SUMS),
}

_ENTERPRISE = (
    _PER_ENTERPRISE
    + f"""
    SELECT e.enterprise_id, e.name, e.province, e.region, e.sector, e.members, e.target_poor_households,
        coalesce(sum(s.settlements), 0)::bigint AS settlements,
        {_MONEY_SUMS}
    FROM enterprises e
    LEFT JOIN sales s USING (enterprise_id)
    LEFT JOIN shares d USING (enterprise_id)
    WHERE e.enterprise_id = $1
    GROUP BY e.enterprise_id
"""
)

# A product's own steps and those of the batches that made it; steps at the same moment in chain order.
_JOURNEY = """
    SELECT j.step, j.what, j.occurred_at, coalesce(j.province, e.province) AS province, j.why, j.event_id,
           j.partner_event_id
    FROM journey_steps j
    LEFT JOIN enterprises e ON e.enterprise_id = j.enterprise_id
    WHERE (j.subject_kind = 'product' AND j.subject_id = $1)
       OR (j.subject_kind = 'batch' AND j.subject_id IN (SELECT batch_id FROM batches WHERE product_id = $1))
    ORDER BY j.occurred_at, array_position($2::text[], j.step), j.event_id
"""


async def area_report(conn: Connection, area: Area) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch(_REPORTS[area])]


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's fields summed over its rows (at most one per province)."""
    summed: dict[str, Any] = {name: sum((row[name] for row in rows), Decimal(0)) for name in MONEY_FIELDS}
    summed |= {name: sum(row[name] for row in rows) for name in COUNT_FIELDS}
    return summed


async def enterprise(conn: Connection, enterprise_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(_ENTERPRISE, enterprise_id)
    return dict(row) if row else None


async def journey(conn: Connection, product_id: str) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch(_JOURNEY, product_id, list(STEPS))]
