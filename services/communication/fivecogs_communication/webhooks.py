"""Delivering notices to subscribers' webhooks: signed POSTs, every attempt recorded, capped exponential backoff.

A background task of the service, beside consuming: it polls the `webhook_deliveries` queue the handlers fill,
claims what is due (several replicas share the queue with `FOR UPDATE SKIP LOCKED`) and POSTs outside any
transaction, so a slow subscriber never holds a database connection or the consumer. Delivery is at least
once (a worker dying after the POST sends it again): receivers deduplicate on `X-Fivecogs-Notice-Id`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import structlog
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fivecogs_communication import store
from fivecogs_shared.consumer import is_transient
from fivecogs_shared.service import Runtime

log = structlog.get_logger()

DEVELOPMENT_SECRET = "fivecogs-development-webhook-secret-do-not-use-in-production"
SIGNATURE_HEADER = "X-Fivecogs-Signature"
NOTICE_ID_HEADER = "X-Fivecogs-Notice-Id"


class WebhookSettings(BaseSettings):
    """FIVECOGS_COMMUNICATION_WEBHOOK_SECRET, FIVECOGS_COMMUNICATION_WEBHOOK_MAX_ATTEMPTS, ..."""

    model_config = SettingsConfigDict(env_prefix="FIVECOGS_COMMUNICATION_WEBHOOK_", extra="ignore")

    secret: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    timeout_seconds: float = Field(5.0, gt=0)
    poll_seconds: float = Field(0.5, gt=0, le=1.0)
    batch: int = Field(20, ge=1)  # deliveries POSTed concurrently per round
    backoff_initial_seconds: float = Field(1.0, gt=0)
    backoff_cap_seconds: float = Field(300.0, gt=0)
    max_attempts: int = Field(8, ge=1)
    lease_seconds: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _lease_outlives_post(self) -> WebhookSettings:
        # A claim must not expire while its POST may still be running, or two workers would send it.
        if self.lease_seconds <= self.timeout_seconds:
            raise ValueError("lease_seconds must exceed timeout_seconds")
        return self


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_seconds(failed_attempts: int, initial: float, cap: float) -> float:
    """Wait before the next attempt after `failed_attempts` failures: initial, 2×, 4×, … at most `cap`."""
    return min(initial * 2.0 ** (failed_attempts - 1), cap)


def outcome(number: int, status_code: int | None, settings: WebhookSettings) -> tuple[str, float]:
    """(status, seconds to wait) after attempt `number`: delivered on 2xx, given up after the last attempt."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered", 0.0
    if number >= settings.max_attempts:
        return "failed", 0.0
    return "pending", backoff_seconds(number, settings.backoff_initial_seconds, settings.backoff_cap_seconds)


def worker(settings: WebhookSettings | None = None) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """The background task; settings come from the environment when the service starts unless given."""

    async def deliver_webhooks(runtime: Runtime) -> None:
        chosen = settings or WebhookSettings()
        if chosen.secret.get_secret_value() == DEVELOPMENT_SECRET:
            log.warning("webhooks are signed with the development secret; set FIVECOGS_COMMUNICATION_WEBHOOK_SECRET")
        await run(runtime.pool, chosen)

    return deliver_webhooks


OUTAGE_PAUSE_CAP = 10.0  # seconds between rounds while the database stays away


async def run(pool: asyncpg.Pool, settings: WebhookSettings) -> None:
    pause = settings.poll_seconds
    async with httpx.AsyncClient(timeout=settings.timeout_seconds, follow_redirects=False) as client:
        while True:
            try:
                claimed = await deliver_due(pool, client, settings)
            except Exception as error:  # the database away, or a bug: keep the worker alive, say so, try again
                if not is_transient(error):
                    log.exception("webhook round failed; retrying")
                elif pause == settings.poll_seconds:  # one line per outage, not a traceback per round
                    log.warning("webhook round failed; retrying with backoff", error=repr(error))
                await asyncio.sleep(pause)
                pause = min(pause * 2, OUTAGE_PAUSE_CAP)
                continue
            if pause != settings.poll_seconds:
                log.info("webhook rounds resumed")
                pause = settings.poll_seconds
            if claimed < settings.batch:  # a full round suggests more are due: go again at once
                await asyncio.sleep(settings.poll_seconds)


async def deliver_due(pool: asyncpg.Pool, client: httpx.AsyncClient, settings: WebhookSettings) -> int:
    """One round: claim what is due, POST it concurrently, record every outcome. Returns how many."""
    async with pool.acquire() as conn:
        due = await store.claim_due(conn, settings.batch, settings.lease_seconds)
    if not due:
        return 0
    attempts = await asyncio.gather(*(attempt(client, d, settings) for d in due))
    async with pool.acquire() as conn, conn.transaction():
        await store.record_attempts(conn, attempts)
    for a in attempts:
        report = log.warning if a.outcome == "failed" else log.info if a.outcome == "pending" else log.debug
        report("webhook attempt", notice_id=a.notice_id, attempt=a.number, status=a.status_code, error=a.error)
    return len(due)


async def attempt(client: httpx.AsyncClient, due: store.DueDelivery, settings: WebhookSettings) -> store.Attempt:
    number = due.attempts + 1
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(settings.secret.get_secret_value(), due.body),
        NOTICE_ID_HEADER: due.notice_id,
    }
    attempted_at, started = datetime.now(UTC), time.perf_counter()
    status_code: int | None = None
    error: str | None = None
    try:
        response = await client.post(due.url, content=due.body, headers=headers)
        status_code = response.status_code
    except (httpx.HTTPError, httpx.InvalidURL) as failure:
        error = f"{type(failure).__name__}: {failure}"[:500]
    duration_ms = round((time.perf_counter() - started) * 1000)
    status, retry_in = outcome(number, status_code, settings)
    return store.Attempt(due.notice_id, number, attempted_at, duration_ms, status_code, error, status, retry_in)
