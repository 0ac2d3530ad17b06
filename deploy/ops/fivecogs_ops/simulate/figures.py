"""Report rows as numbers: the figures management serves, added up and compared exactly (Decimal, never float)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from fivecogs_shared.provinces import region_of

ZERO = Decimal("0.00")
COUNT_FIELDS = ("enterprises", "active_enterprises", "target_poor_households_reached", "notices")
MONEY_FIELDS = (
    "revenue_thb",
    "cost_thb",
    "margin_thb",
    "members_income_thb",
    "community_fund_thb",
    "reinvest_thb",
    "local_value_thb",
)


@dataclass(frozen=True)
class Row:
    enterprises: int = 0
    active_enterprises: int = 0
    revenue_thb: Decimal = ZERO
    cost_thb: Decimal = ZERO
    margin_thb: Decimal = ZERO
    members_income_thb: Decimal = ZERO
    community_fund_thb: Decimal = ZERO
    reinvest_thb: Decimal = ZERO
    local_value_thb: Decimal = ZERO
    target_poor_households_reached: int = 0
    notices: int = 0

    def __add__(self, other: Row) -> Row:
        return Row(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(Row)})

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Row:
        values: dict[str, Any] = {name: int(raw.get(name, 0)) for name in COUNT_FIELDS}
        values |= {name: Decimal(str(raw.get(name, "0.00"))) for name in MONEY_FIELDS}
        return cls(**values)

    def to_json(self) -> dict[str, int | str]:
        out: dict[str, int | str] = {}
        for f in fields(Row):
            value = getattr(self, f.name)
            out[f.name] = f"{value:.2f}" if f.name in MONEY_FIELDS else int(value)
        return out

    def value(self, name: str) -> int | Decimal:
        found: int | Decimal = getattr(self, name)
        return found


FIELD_NAMES = tuple(f.name for f in fields(Row))

# Rows by province (or region) name.
Table = dict[str, Row]


def total(rows: Iterable[Row]) -> Row:
    result = Row()
    for row in rows:
        result = result + row
    return result


def by_region(provinces: Mapping[str, Row]) -> Table:
    regions: Table = {}
    for province, row in provinces.items():
        region = region_of(province)
        regions[region] = regions.get(region, Row()) + row
    return regions


def plus(before: Mapping[str, Row], delta: Mapping[str, Row]) -> Table:
    """What a report should read after `delta` happened on top of `before`."""
    return {name: before.get(name, Row()) + delta.get(name, Row()) for name in sorted({*before, *delta})}


@dataclass(frozen=True)
class Report:
    """Both report endpoints, parsed."""

    provinces: Table
    province_totals: Row
    regions: Table
    region_totals: Row

    @classmethod
    def from_json(cls, provinces: Mapping[str, Any], regions: Mapping[str, Any]) -> Report:
        return cls(
            provinces=_rows(provinces, "province"),
            province_totals=Row.from_json(provinces.get("totals", {})),
            regions=_rows(regions, "region"),
            region_totals=Row.from_json(regions.get("totals", {})),
        )

    @classmethod
    def of_provinces(cls, provinces: Mapping[str, Row]) -> Report:
        """A report as management would build it from these province rows."""
        rows = {name: row for name, row in provinces.items() if row != Row()}
        regions = by_region(rows)
        return cls(
            dict(sorted(rows.items())), total(rows.values()), dict(sorted(regions.items())), total(rows.values())
        )

    def plus(self, delta: Report) -> Report:
        return Report(
            plus(self.provinces, delta.provinces),
            self.province_totals + delta.province_totals,
            plus(self.regions, delta.regions),
            self.region_totals + delta.region_totals,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "provinces": {"rows": _json_rows(self.provinces, "province"), "totals": self.province_totals.to_json()},
            "regions": {"rows": _json_rows(self.regions, "region"), "totals": self.region_totals.to_json()},
        }


def _rows(body: Mapping[str, Any], name_field: str) -> Table:
    return {str(row[name_field]): Row.from_json(row) for row in body.get("rows", [])}


def _json_rows(table: Mapping[str, Row], name_field: str) -> list[dict[str, Any]]:
    return [{name_field: name, **row.to_json()} for name, row in sorted(table.items())]
