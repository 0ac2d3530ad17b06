"""The lag report as Prometheus text, served by the ops page at `/metrics`: what the page shows, to alert on.

Rendered from the report's JSON (`Report.to_json`, what the page reads), so a status on the page, from
`fivecogs lag` and in a gauge is one and the same. A group's status is its worst partition's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from fivecogs_ops.lag.rules import Status

STATUS_SCALE = ", ".join(f"{int(s)} {s.name}" for s in Status)  # "0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP"


def render(body: Mapping[str, Any]) -> bytes:
    """Prometheus text exposition of a report's JSON; a failed look (no groups) leaves only `…_sampled 0`."""
    registry = CollectorRegistry()
    sampled = Gauge("fivecogs_consumer_lag_sampled", "1 when the last look at Kafka succeeded", registry=registry)
    sampled.set(0 if body.get("error") or body.get("status") == "UNKNOWN" else 1)
    group_status = _gauge(registry, "group_status", f"Consumer group status, its worst partition's: {STATUS_SCALE}")
    partition_status = Gauge(
        "fivecogs_consumer_partition_status",
        f"Consumer group status per partition: {STATUS_SCALE}",
        ("group", "topic", "partition"),
        registry=registry,
    )
    lag = _gauge(registry, "group_lag", "Records the group has not consumed, all partitions")
    seconds = Gauge(
        "fivecogs_consumer_group_lag_seconds",
        "Age of the oldest record the group has not consumed (0 caught up); estimate: record (its timestamp) or "
        "interpolated (between samples)",
        ("group", "estimate"),
        registry=registry,
    )
    for group in body.get("groups", []):
        name = group["group"]
        group_status.labels(name).set(Status[group["status"]])
        lag.labels(name).set(group["lag"])
        if group["lag_seconds"] is not None:  # unknown: no sample rather than a made-up 0
            seconds.labels(name, group["estimate"]).set(group["lag_seconds"])
        for p in group["partitions"]:
            partition_status.labels(name, p["topic"], str(p["partition"])).set(Status[p["status"]])
    return generate_latest(registry)


def _gauge(registry: CollectorRegistry, name: str, help_text: str) -> Gauge:
    return Gauge(f"fivecogs_consumer_{name}", help_text, ("group",), registry=registry)


def endpoint(latest: Callable[[], Mapping[str, Any] | None]) -> Callable[[Request], Awaitable[Response]]:
    """The `/metrics` route of the ops page, from its sampler's latest look (a scrape never waits on Kafka)."""

    async def metrics(_: Request) -> Response:
        return Response(render(latest() or {"status": "UNKNOWN"}), media_type=CONTENT_TYPE_LATEST)

    return metrics
