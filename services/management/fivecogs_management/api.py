"""HTTP JSON API of management: the programme report by province and region, enterprises, product journeys.

Money is written as strings with two decimals ("1250.50"), counts as integers."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from fivecogs_management import reports

if TYPE_CHECKING:
    from fivecogs_shared.service import Runtime


def routes(runtime: Runtime) -> list[BaseRoute]:
    async def report(area: reports.Area) -> Response:
        async with runtime.pool.acquire() as conn:
            rows = await reports.area_report(conn, area)
        return JSONResponse({"rows": [_json(row) for row in rows], "totals": _json(reports.totals(rows))})

    async def provinces(_: Request) -> Response:
        return await report("province")

    async def regions(_: Request) -> Response:
        return await report("region")

    async def enterprise(request: Request) -> Response:
        enterprise_id = request.path_params["enterprise_id"]
        async with runtime.pool.acquire() as conn:
            found = await reports.enterprise(conn, enterprise_id)
        if found is None:
            return _not_found(f"enterprise {enterprise_id} is not registered")
        return JSONResponse(_json(found))

    async def journey(request: Request) -> Response:
        product_id = request.path_params["product_id"]
        async with runtime.pool.acquire() as conn:
            steps = await reports.journey(conn, product_id)
        if not steps:
            return _not_found(f"product {product_id} is not known")
        return JSONResponse({"product_id": product_id, "steps": [_step(step) for step in steps]})

    return [
        Route("/v1/report/provinces", provinces),
        Route("/v1/report/regions", regions),
        Route("/v1/enterprises/{enterprise_id}", enterprise),
        Route("/v1/products/{product_id}/journey", journey),
    ]


def _json(row: dict[str, Any]) -> dict[str, Any]:
    return {name: f"{value:.2f}" if isinstance(value, Decimal) else value for name, value in row.items()}


def _step(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": row["step"],
        "what": row["what"],
        "when": row["occurred_at"].isoformat(),
        "where": row["province"],
        "why": row["why"],
        "event_id": row["event_id"],
        # The ce_id of the partner's event that caused the step (null for steps recorded before it was kept).
        "partner_event_id": row["partner_event_id"],
    }


def _not_found(detail: str) -> Response:
    return JSONResponse({"error": "not_found", "detail": detail}, status_code=404)
