"""Management's report as rich tables: one row per province or region, money right-aligned, a totals row."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from rich.table import Table

from fivecogs_ops.auth import bearer, refusal

# (field, heading, is money)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("enterprises", "enterprises", False),
    ("active_enterprises", "active", False),
    ("revenue_thb", "revenue ฿", True),
    ("cost_thb", "cost ฿", True),
    ("margin_thb", "margin ฿", True),
    ("members_income_thb", "members ฿", True),
    ("community_fund_thb", "community fund ฿", True),
    ("reinvest_thb", "reinvest ฿", True),
    ("local_value_thb", "local value ฿", True),
    ("target_poor_households_reached", "poor households", False),
    ("notices", "notices", False),
)
VIEWS = {"province": "/v1/report/provinces", "region": "/v1/report/regions"}
# A terminal too narrow for all eleven columns gets the report in three parts that each fit in 80 columns.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sales", ("revenue_thb", "cost_thb", "margin_thb", "local_value_thb")),
    ("income returned to the locality", ("members_income_thb", "community_fund_thb", "reinvest_thb")),
    ("reach", ("enterprises", "active_enterprises", "target_poor_households_reached", "notices")),
)
FULL_WIDTH = 170


class ReportUnavailable(RuntimeError):
    pass


def fetch(management_url: str, by: str, token: str, timeout: float = 10.0) -> dict[str, Any]:
    """One report view as management serves it; `token` is an operator token management accepts."""
    url = management_url.rstrip("/") + VIEWS[by]
    try:
        response = httpx.get(url, headers=bearer(token), timeout=timeout)
        if refused := refusal(response):
            raise ReportUnavailable(refused)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise ReportUnavailable(f"cannot read {url}: {error}. Is the management service running?") from error
    body: dict[str, Any] = response.json()
    return body


def report_tables(body: Mapping[str, Any], by: str, title: str, width: int) -> list[Table]:
    """The whole report in one table when the terminal is wide enough, else in three narrower ones."""
    if width >= FULL_WIDTH:
        return [report_table(body, by, title)]
    return [report_table(body, by, f"{title}: {part}", fields) for part, fields in PARTS]


def report_table(
    body: Mapping[str, Any], by: str, title: str | None = None, fields: tuple[str, ...] | None = None
) -> Table:
    columns = [c for c in COLUMNS if fields is None or c[0] in fields]
    title = title or f"by {by}"
    # as wide as its title at least: a narrow table would fold the title over two lines
    table = Table(title=title, title_justify="left", show_footer=False, min_width=len(title))
    table.add_column(by, no_wrap=True)
    for _, heading, _money in columns:
        table.add_column(heading, justify="right", no_wrap=True)
    for row in body.get("rows", []):
        table.add_row(str(row.get(by, "?")), *_cells(row, columns))
    table.add_section()
    table.add_row("[bold]total[/]", *(f"[bold]{cell}[/]" for cell in _cells(body.get("totals", {}), columns)))
    return table


def _cells(row: Mapping[str, Any], columns: list[tuple[str, str, bool]]) -> list[str]:
    return [_cell(row.get(name), money) for name, _, money in columns]


def _cell(value: Any, money: bool) -> str:
    if value is None:
        return "—"
    if not money:
        return f"{value:,}" if isinstance(value, int) else str(value)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    text = f"{amount:,.2f}"
    return f"[red]{text}[/]" if amount < 0 else text
