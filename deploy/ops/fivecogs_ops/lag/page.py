"""`fivecogs ops`: one self-contained page for operators (static/ops.html: inline CSS, JS and SVG, nothing
fetched from elsewhere) and the JSON behind it (`/api/lag`). While it runs, the server samples every few seconds
into the same store `fivecogs lag` uses, so the page's hour-long charts and the CLI's judgements share history.

The JSON needs an operator token (`Authorization: Bearer`, checked by the services' own `BearerAuth`). The page
itself is open: it is the same static file for everyone and holds no data, and a browser cannot put a header on
the navigation that loads it. It reads the token from the URL fragment (`#token=...`), which a browser never
sends to a server, so the token is in no access log.

Without JavaScript, `/summary` is the same sample rendered on the server (summary.py). It takes the token as a
bearer header or as the password of HTTP Basic, which a browser asks for on its own (summary_auth.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from fivecogs_ops.dlq import dead_letters
from fivecogs_ops.held import ServiceSchema, held_events, page_json
from fivecogs_ops.lag import metrics
from fivecogs_ops.lag.backlog import dead_letter_topics, outbox_backlogs
from fivecogs_ops.lag.overall import UNKNOWN, Thresholds, overall
from fivecogs_ops.lag.report import HOUR, look
from fivecogs_ops.lag.sampling import DEFAULT_PREFIX
from fivecogs_ops.lag.store import SampleStore
from fivecogs_ops.lag.summary import render_summary
from fivecogs_ops.lag.summary_auth import refusal, unauthorized
from fivecogs_shared.contracts import COGS
from fivecogs_shared.http import BearerAuth
from fivecogs_shared.kafka_access import KafkaAccess

log = structlog.get_logger()
SAMPLER_STOP_SECONDS = 2.0
PAGE = Path(__file__).parent / "static" / "ops.html"
SUMMARY_PATH = "/summary"
# Past BearerAuth: the data-free page shell, the liveness probe, metrics (open as the services'), and the summary,
# which checks credentials itself (Basic too).
OPEN_PAGE_PATHS = frozenset({"/", "/healthz", "/metrics", SUMMARY_PATH})
# The page holds a token in its tab: it may talk to this server only, be framed by nobody, and not be cached.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}
# The summary runs no script at all, and fetches nothing.
SUMMARY_HEADERS = PAGE_HEADERS | {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class PageConfig:
    kafka: KafkaAccess
    database_url: str
    store: SampleStore
    prefix: str = DEFAULT_PREFIX
    window: float = 600.0
    interval: float = 5.0
    # Each service's Postgres schema (`fivecogs ops` passes FIVECOGS_<COG>_DB_SCHEMA's, as the services read it).
    services: tuple[ServiceSchema, ...] = tuple(ServiceSchema(cog, cog) for cog in COGS)
    # What /api/lag accepts; none means it answers 401 to everyone.
    tokens: tuple[SecretStr, ...] = field(default=(), repr=False)
    thresholds: Thresholds = field(default_factory=Thresholds)


class Sampler:
    """Samples on a timer; the page reads the latest result, so a page load never waits on Kafka."""

    def __init__(self, config: PageConfig) -> None:
        self.config = config
        self.latest: dict[str, Any] | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        while True:
            self.latest = await self.sample()
            self.ready.set()
            await asyncio.sleep(self.config.interval)

    async def sample(self) -> dict[str, Any]:
        c = self.config
        body: dict[str, Any] = {"error": None, "refresh_seconds": min(5.0, max(1.0, c.interval))}
        try:
            report = await look(c.kafka, c.store, prefix=c.prefix, window=c.window, settle=0)
            body |= report.to_json(series=True)
        except Exception as error:  # keep serving: the page says what is wrong instead of going blank
            log.warning("lag not sampled", error=repr(error))
            body |= {"time": time.time(), "status": UNKNOWN, "groups": [], "error": f"Kafka: {error!r}"}
        body["outbox"] = await _or_none(_outbox(c))
        body["dlq"] = await _or_none(_dead_letters(c))
        body["held"] = await _or_none(_held(c))
        body["chart_seconds"] = HOUR
        body["overall"] = overall(body, c.thresholds)
        return body


def not_sampled(thresholds: Thresholds) -> dict[str, Any]:
    body = {"status": UNKNOWN, "groups": [], "error": "no sample yet", "outbox": [], "dlq": [], "held": []}
    return body | {"overall": overall(body, thresholds)}


async def _outbox(c: PageConfig) -> list[dict[str, Any]]:
    return [asdict(b) for b in await outbox_backlogs(c.database_url, c.services)]


async def _dead_letters(c: PageConfig) -> list[dict[str, Any]]:
    """Per topic: waiting (not replayed yet) and the total ever written."""
    return [asdict(t) for t in dead_letter_topics(await dead_letters(c.kafka))]


async def _held(c: PageConfig) -> list[dict[str, Any]]:
    """Read from each schema's `held` table, like the outbox: a stopped service exports no /metrics, and its held
    events are still there, waiting, which is when they matter."""
    return page_json(await held_events(c.database_url, c.services, limit=0))


async def _or_none(work: Any) -> Any:
    try:
        return await work
    except Exception as error:
        log.warning("ops page extra not sampled", error=repr(error))
        return None


def create_app(config: PageConfig) -> Starlette:
    sampler = Sampler(config)

    async def page(_: Request) -> Response:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers=PAGE_HEADERS)

    async def latest() -> dict[str, Any]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sampler.ready.wait(), 30)  # only the very first request can wait
        return sampler.latest or not_sampled(config.thresholds)

    async def api_lag(_: Request) -> Response:
        return JSONResponse(await latest())

    async def summary(request: Request) -> Response:
        if why := refusal(request.scope["headers"], config.tokens):
            return unauthorized(why, SUMMARY_HEADERS)
        return HTMLResponse(render_summary(await latest()), headers=SUMMARY_HEADERS)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "sampled": sampler.latest is not None})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(sampler.run(), name="ops-sampler")
        try:
            yield
        finally:
            # Bounded: a sample cut short in aiokafka's client shutdown must not hold Ctrl-C or SIGTERM.
            task.cancel()
            await asyncio.wait([task], timeout=SAMPLER_STOP_SECONDS)

    routes = [Route("/", page), Route("/api/lag", api_lag), Route("/healthz", healthz), Route(SUMMARY_PATH, summary)]
    routes.append(Route("/metrics", metrics.endpoint(lambda: sampler.latest)))  # the lag report for Prometheus
    auth = Middleware(BearerAuth, tokens=config.tokens, open_paths=OPEN_PAGE_PATHS)
    return Starlette(routes=routes, lifespan=lifespan, middleware=[auth])
