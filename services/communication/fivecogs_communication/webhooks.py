"""Delivering notices to subscribers' webhooks: signed POSTs, every attempt recorded, capped exponential backoff.

A background task of the service, beside consuming: it polls the `webhook_deliveries` queue the handlers fill,
claims what is due (several replicas share the queue with `FOR UPDATE SKIP LOCKED`) and POSTs outside any
transaction, so a slow subscriber never holds a database connection or the consumer. Delivery is at least
once (a worker dying after the POST sends it again): receivers deduplicate on `webhook-id` (the notice id,
also sent as `X-Fivecogs-Notice-Id`). Notices are signed by the Standard Webhooks specification (signing.py).

No webhook holds the worker:
- each attempt has one deadline, `timeout_seconds`, for the whole request (resolve, connect, send, headers,
  body), so an endpoint that answers a byte at a time cannot stretch it; redirects are not followed (a 3xx is a
  failed attempt: its Location was never checked), proxies from the environment are ignored, and at most
  `BODY_LIMIT` bytes of the answer are read: the status decides the outcome, the start of the body only goes to
  the log of a failed attempt;
- deliveries are independent: up to `batch` attempts run at once, each recorded as soon as it ends, and the
  worker claims more as slots free; a claim takes at most one delivery per subscriber and none of a subscriber
  with an attempt in flight (on any replica), so a dead endpoint holds one slot and delays only its own notices;
- a lease never expires under a working delivery (which would let a second replica send it too): an attempt
  ends within `timeout_seconds` and its outcome is recorded within `RECORD_SECONDS` (else it is left to the
  lease, and sent again), and `lease_seconds` must exceed their sum;
- cancelling the worker (shutdown) cancels the attempts in flight: their leases expire and they are sent again.

No webhook reaches inside: every attempt resolves the URL's host again and checks every address with the
destination policy (destinations.py, the one subscriptions were checked with), then connects to the address it
checked, with the URL's host name in the `Host` header and as the TLS name (SNI and certificate), so a name
re-pointed at 127.0.0.1 after its check (DNS rebinding) is never reached. A destination that has become forbidden
fails its notice at once, for good (`fivecogs_webhook_given_up_total{why="destination"}`); a name that does not
resolve is an ordinary failed attempt, retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

import asyncpg
import httpx
import structlog
from prometheus_client import CollectorRegistry, Counter
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fivecogs_communication import destinations, signing, store
from fivecogs_shared.consumer import is_transient
from fivecogs_shared.errors import RuleViolation
from fivecogs_shared.service import Runtime

log = structlog.get_logger()

DEVELOPMENT_SECRET = "fivecogs-development-webhook-secret-do-not-use-in-production"
NOTICE_ID_HEADER = "X-Fivecogs-Notice-Id"
RECORD_SECONDS = 5.0  # to record an attempt's outcome (a pool connection, one transaction); part of the lease
BODY_LIMIT = 64 * 1024  # bytes of a response read at most: the status decides, the start is for the log
EXCERPT_CHARS = 200  # of a failed attempt's response body, for its log line


class WebhookSettings(BaseSettings):
    """FIVECOGS_COMMUNICATION_WEBHOOK_SECRET, FIVECOGS_COMMUNICATION_WEBHOOK_MAX_ATTEMPTS, ..."""

    model_config = SettingsConfigDict(env_prefix="FIVECOGS_COMMUNICATION_WEBHOOK_", extra="ignore")

    # The signing key each subscription's secret is derived from (signing.py); during a rotation the old key
    # stays in `previous_secret` and notices carry a signature under each.
    secret: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    previous_secret: SecretStr | None = None
    # Outside development the public development key is refused: anyone could forge notices with it.
    environment: Literal["development", "production"] = Field(
        "production", validation_alias=AliasChoices("FIVECOGS_ENVIRONMENT", "environment")
    )
    timeout_seconds: float = Field(5.0, gt=0)
    poll_seconds: float = Field(0.5, gt=0, le=1.0)
    batch: int = Field(20, ge=1)  # attempts in flight at most (one per subscriber)
    backoff_initial_seconds: float = Field(1.0, gt=0)
    backoff_cap_seconds: float = Field(300.0, gt=0)
    max_attempts: int = Field(8, ge=1)
    lease_seconds: float = Field(60.0, gt=0)
    # Webhooks to 127.0.0.0/8 and ::1, for tests and the demo's local receivers: development only, since a
    # partner's URL must never reach the service's own machine in production.
    allow_loopback: bool = False

    @model_validator(mode="after")
    def _real_key_outside_development(self) -> WebhookSettings:
        keys = [self.secret, *([self.previous_secret] if self.previous_secret else [])]
        if self.environment != "development" and any(k.get_secret_value() == DEVELOPMENT_SECRET for k in keys):
            raise ValueError(
                "webhooks would be signed with the public development key: set FIVECOGS_COMMUNICATION_WEBHOOK_SECRET "
                "(or FIVECOGS_ENVIRONMENT=development on a developer's machine)"
            )
        if any(len(k.get_secret_value()) < 16 for k in keys):
            raise ValueError("a webhook signing key must have at least 16 characters")
        if self.allow_loopback and self.environment != "development":
            raise ValueError(
                "FIVECOGS_COMMUNICATION_WEBHOOK_ALLOW_LOOPBACK lets partners' webhooks reach this machine: it is "
                "for FIVECOGS_ENVIRONMENT=development only"
            )
        return self

    def destination_policy(self) -> destinations.DestinationPolicy:
        """The policy for subscriptions and sends alike; resolving counts against an attempt's deadline."""
        return destinations.DestinationPolicy(allow_loopback=self.allow_loopback, resolve_seconds=self.timeout_seconds)

    def signing_keys(self) -> list[str]:
        """Current key first, then the one being rotated out."""
        return [k.get_secret_value() for k in (self.secret, self.previous_secret) if k is not None]

    @model_validator(mode="after")
    def _lease_outlives_post(self) -> WebhookSettings:
        # A claim must not expire while its POST may still be running or being recorded, or two workers would
        # send it: the attempt's deadline and the time allowed to record it both fit in the lease.
        if self.lease_seconds <= self.timeout_seconds + RECORD_SECONDS:
            raise ValueError(f"lease_seconds must exceed timeout_seconds + {RECORD_SECONDS:g} (to record the outcome)")
        return self


def backoff_seconds(failed_attempts: int, initial: float, cap: float) -> float:
    """Wait before the next attempt after `failed_attempts` failures: initial, 2×, 4×, … at most `cap`."""
    return min(initial * 2.0 ** (failed_attempts - 1), cap)


def outcome(
    number: int, status_code: int | None, settings: WebhookSettings, *, refused: bool = False
) -> tuple[str, float]:
    """(status, seconds to wait) after attempt `number`: delivered on 2xx, given up after the last attempt, or at
    once when the destination was refused (retrying cannot make a forbidden address allowed)."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered", 0.0
    if refused or number >= settings.max_attempts:
        return "failed", 0.0
    return "pending", backoff_seconds(number, settings.backoff_initial_seconds, settings.backoff_cap_seconds)


class WebhookMetrics:
    """The worker's own metrics, in the service's registry (none: unregistered, for tests)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.given_up = Counter(
            "fivecogs_webhook_given_up",
            "Webhook notices given up, by why: 'attempts' (the last one failed) or 'destination' (refused)",
            ["why"],
            registry=registry,
        )


def worker(
    settings: WebhookSettings | None = None, policy: destinations.DestinationPolicy | None = None
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """The background task; settings come from the environment when the service starts unless given, and the
    destination policy from the settings unless given (app.py gives the one its subscriptions use)."""

    async def deliver_webhooks(runtime: Runtime) -> None:
        chosen = settings or WebhookSettings()
        if chosen.secret.get_secret_value() == DEVELOPMENT_SECRET:
            log.warning("webhooks are signed with the development key; set FIVECOGS_COMMUNICATION_WEBHOOK_SECRET")
        if chosen.allow_loopback:
            log.warning("webhooks may go to loopback addresses (development only)")
        await run(runtime.pool, chosen, policy, WebhookMetrics(runtime.metrics.registry))

    return deliver_webhooks


OUTAGE_PAUSE_CAP = 10.0  # seconds between rounds while the database stays away


async def run(
    pool: asyncpg.Pool,
    settings: WebhookSettings,
    policy: destinations.DestinationPolicy | None = None,
    metrics: WebhookMetrics | None = None,
) -> None:
    pause = settings.poll_seconds
    async with (
        client_for(settings) as client,
        InFlight(pool, client, settings, policy, metrics) as in_flight,
    ):
        while True:
            try:
                await deliver_due(pool, in_flight, settings)
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
            # All slots busy: claim again as soon as one frees. Otherwise nothing else is due now, but an attempt
            # ending may make its subscriber's next delivery claimable: poll, or sooner if one ends.
            await in_flight.wait(None if in_flight.free == 0 else settings.poll_seconds)


def client_for(settings: WebhookSettings) -> httpx.AsyncClient:
    # httpx's own timeouts bound each phase; the whole-request deadline is `attempt`'s. No environment proxies
    # (a subscriber's URL is reached directly, at the address checked), and enough connections that no attempt
    # waits for one. No keep-alive: the pool knows a connection by its address, not by the host name it was
    # opened (and its certificate verified) for, so reusing one could carry a notice for one name over a TLS
    # session verified for another; each attempt opens its own, to the address it has just checked.
    limits = httpx.Limits(max_connections=settings.batch, max_keepalive_connections=0)
    return httpx.AsyncClient(timeout=settings.timeout_seconds, follow_redirects=False, trust_env=False, limits=limits)


async def deliver_due(pool: asyncpg.Pool, in_flight: InFlight, settings: WebhookSettings) -> int:
    """Claim what is due, as many as there are free slots, and start their attempts. Returns how many."""
    if in_flight.free == 0:
        return 0
    async with pool.acquire() as conn:
        due = await store.claim_due(conn, in_flight.free, settings.lease_seconds)
    for delivery in due:
        in_flight.start(delivery)
    return len(due)


class InFlight:
    """The attempts running, at most `settings.batch`, each recorded on its own as soon as it ends."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: httpx.AsyncClient,
        settings: WebhookSettings,
        policy: destinations.DestinationPolicy | None = None,
        metrics: WebhookMetrics | None = None,
    ) -> None:
        self.pool, self.client, self.settings = pool, client, settings
        self.policy = policy or settings.destination_policy()
        self.metrics = metrics or WebhookMetrics()
        self.tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> InFlight:
        return self

    async def __aexit__(self, *_: object) -> None:
        # Nothing keeps running after the worker: the cancelled deliveries come back when their leases expire.
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    @property
    def free(self) -> int:
        return self.settings.batch - len(self.tasks)

    def start(self, due: store.DueDelivery) -> None:
        task = asyncio.create_task(self.deliver(due), name=f"webhook-{due.notice_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def wait(self, timeout: float | None) -> None:
        """Until an attempt ends, or `timeout` seconds."""
        if not self.tasks:
            await asyncio.sleep(timeout or 0)
            return
        done, _ = await asyncio.wait(self.tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        self.tasks.difference_update(done)

    async def deliver(self, due: store.DueDelivery) -> None:
        result, response_start, refusal = await attempt(self.client, due, self.settings, self.policy)
        try:
            async with asyncio.timeout(RECORD_SECONDS), self.pool.acquire() as conn:
                await store.record_attempt(conn, result)
        except Exception as error:  # the POST was made, but its lease will bring it back: it is sent again
            # The database away is already said once by the claiming loop; anything else is a bug: a traceback.
            report_failure = log.info if is_transient(error) else log.exception
            report_failure("webhook attempt not recorded; it will be sent again", notice_id=due.notice_id)
            return
        if refusal is not None:
            self.metrics.given_up.labels("destination").inc()
            log.warning(
                "webhook destination refused; notice given up",
                notice_id=due.notice_id,
                subscriber_id=due.subscriber_id,
                reason=refusal,
            )
            return
        if result.outcome == "failed":
            self.metrics.given_up.labels("attempts").inc()
        report = log.warning if result.outcome == "failed" else log.info if result.outcome == "pending" else log.debug
        report(
            "webhook attempt",
            notice_id=result.notice_id,
            attempt=result.number,
            status=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
            **({"response": response_start} if response_start else {}),
        )


@dataclass
class Answer:
    """What came back so far: filled while the response streams in, so a deadline keeps what arrived."""

    status_code: int | None = None
    body: bytearray = field(default_factory=bytearray)


async def attempt(
    client: httpx.AsyncClient,
    due: store.DueDelivery,
    settings: WebhookSettings,
    policy: destinations.DestinationPolicy | None = None,
) -> tuple[store.Attempt, str, str | None]:
    """Check the destination and POST one delivery, both within the whole-request deadline. Returns the attempt,
    for a failed one the start of the response body (else ''), and why the destination was refused (else None)."""
    number = due.attempts + 1
    attempted_at, started = datetime.now(UTC), time.perf_counter()
    answer = Answer()
    error, refusal = await checked_post(client, due, settings, policy or settings.destination_policy(), answer)
    duration_ms = round((time.perf_counter() - started) * 1000)
    if answer.status_code is not None:  # the status decides; a body cut short by the deadline or an error does not
        error = None
    status, retry_in = outcome(number, answer.status_code, settings, refused=refusal is not None)
    recorded = store.Attempt(
        due.notice_id,
        number,
        attempted_at,
        duration_ms,
        answer.status_code,
        error[:500] if error else None,
        status,
        retry_in,
    )
    return recorded, "" if status == "delivered" else excerpt(answer.body), refusal


async def checked_post(
    client: httpx.AsyncClient,
    due: store.DueDelivery,
    settings: WebhookSettings,
    policy: destinations.DestinationPolicy,
    answer: Answer,
) -> tuple[str | None, str | None]:
    """Resolve and check the destination, then POST to the address checked, within the whole-request deadline.
    Returns (the error that prevented an answer, why the destination was refused), None where there is none."""
    try:
        async with asyncio.timeout(settings.timeout_seconds):
            destination = await policy.check(due.url)
            await post(client, destination, due, settings, answer)
    except RuleViolation as refused:  # forbidden now, whatever it was at subscription: never sent
        return f"destination refused: {refused.detail}", refused.detail
    except destinations.Unresolved as unresolved:
        return f"Unresolved: {unresolved.detail}", None
    except TimeoutError:
        return f"Timeout: no complete answer within {settings.timeout_seconds:g}s", None
    except (httpx.HTTPError, httpx.InvalidURL) as failure:
        return f"{type(failure).__name__}: {failure}", None
    except Exception as failure:  # recorded like any failure, so it counts towards giving up, not retried forever
        log.exception("webhook attempt raised", notice_id=due.notice_id)
        return f"{type(failure).__name__}: {failure}", None
    return None, None


async def post(
    client: httpx.AsyncClient,
    destination: destinations.Destination,
    due: store.DueDelivery,
    settings: WebhookSettings,
    answer: Answer,
) -> None:
    """POST to the checked address. httpx connects to the URL's host, here that address; the `Host` header
    (which httpx leaves alone when given) and `sni_hostname` (httpcore's TLS server name, hence the certificate
    check) carry the name the subscriber gave, so its server sees the request it expects."""
    headers = {
        "Host": destination.target.host_header,
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",  # the body is read raw (see read_capped): ask for it uncompressed
        NOTICE_ID_HEADER: due.notice_id,
        # webhook-id is the notice id, the same on every attempt: receivers deduplicate on it
        **signing.headers(settings.signing_keys(), due.subscriber_id, due.notice_id, int(time.time()), due.body),
    }
    extensions = {"sni_hostname": destination.tls_name}
    url = destination.connect_url
    async with client.stream("POST", url, content=due.body, headers=headers, extensions=extensions) as response:
        answer.status_code = response.status_code
        await read_capped(response, answer.body, BODY_LIMIT)


async def read_capped(response: httpx.Response, into: bytearray, limit: int) -> None:
    """Append at most `limit` bytes of the body to `into` and stop reading there: leaving the stream early
    closes the connection instead of draining it."""
    # Raw bytes, never decoded: a compressed answer could inflate far beyond the limit. (It is a generator.)
    raw = cast(AsyncGenerator[bytes, None], response.aiter_raw())
    async with contextlib.aclosing(raw) as chunks:
        async for chunk in chunks:
            into += chunk[: limit - len(into)]
            if len(into) >= limit:
                return


def excerpt(body: bytes | bytearray) -> str:
    return body[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
