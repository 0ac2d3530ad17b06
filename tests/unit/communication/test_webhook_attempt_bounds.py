"""One webhook attempt is bounded: one deadline for the whole request, a capped body read, the status decides.

The endpoints here are httpx mock transports (no network): what matters is what `attempt` does with them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine

import httpx
import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

from fivecogs_communication import destinations, signing, store, webhooks
from fivecogs_communication.webhooks import BODY_LIMIT, RECORD_SECONDS, WebhookSettings

SETTINGS = WebhookSettings(secret="unit-test-signing-key", timeout_seconds=0.5, lease_seconds=10, max_attempts=3)
DUE = store.DueDelivery("n-1", "sub-1", "http://hook.test/h", b'{"notice_id":"n-1"}', attempts=0)
PUBLIC = "93.184.216.34"


async def _hook_test(host: str, port: int) -> list[str]:
    # The mock transports below never connect: hook.test only needs a public address to pass the check.
    assert host == "hook.test"
    return [PUBLIC]


POLICY = destinations.DestinationPolicy(resolver=_hook_test)


class Drip(httpx.AsyncByteStream):
    """A body that never ends: one byte every `every` seconds, counting what was asked for."""

    def __init__(self, every: float = 0.05, chunk: bytes = b"x") -> None:
        self.every, self.chunk, self.sent, self.closed = every, chunk, 0, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(self.every)
            self.sent += len(self.chunk)
            yield self.chunk

    async def aclose(self) -> None:
        self.closed = True


def client(handler: Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=False)


async def timed(http: httpx.AsyncClient) -> tuple[store.Attempt, str, float]:
    started = time.perf_counter()
    async with http:
        result, response_start, refusal = await webhooks.attempt(http, DUE, SETTINGS, POLICY)
    assert refusal is None
    return result, response_start, time.perf_counter() - started


async def test_no_answer_ends_at_the_deadline_with_an_error() -> None:
    async def never(_: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    result, _, took = await timed(client(never))
    assert 0.5 <= took < 0.5 + 0.4
    assert (result.status_code, result.outcome, result.number) == (None, "pending", 1)
    assert result.error == "Timeout: no complete answer within 0.5s"
    assert 500 <= result.duration_ms < 900


async def test_a_dripping_body_cannot_stretch_the_attempt_and_the_status_decides() -> None:
    drip = Drip(every=0.05)

    async def slow_body(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=drip)

    result, _, took = await timed(client(slow_body))
    assert took < 0.5 + 0.4  # every byte arrives well within httpx's per-read timeout: only the deadline stops it
    assert (result.status_code, result.error, result.outcome) == (200, None, "delivered")
    assert drip.closed


async def test_a_huge_body_is_read_up_to_the_limit_only() -> None:
    body = Drip(every=0, chunk=b"y" * 16 * 1024)

    async def huge(_: httpx.Request) -> httpx.Response:
        return httpx.Response(502, stream=body)

    result, response_start, took = await timed(client(huge))
    assert (result.status_code, result.error, result.outcome) == (502, None, "pending")
    assert body.sent == BODY_LIMIT  # 4 chunks of 16 KiB, not one more
    assert body.closed
    assert response_start == "y" * webhooks.EXCERPT_CHARS  # the start of a failed attempt's answer, for its log
    assert took < 0.5


async def test_read_capped_keeps_at_most_the_limit_of_a_chunk_that_crosses_it() -> None:
    response = httpx.Response(200, stream=httpx.ByteStream(b"a" * 10 + b"b" * 10))
    into = bytearray()
    await webhooks.read_capped(response, into, 15)
    assert bytes(into) == b"a" * 10 + b"b" * 5


async def test_a_redirect_is_a_failed_attempt_and_is_not_followed() -> None:
    seen: list[str] = []

    async def redirect(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(302, headers={"Location": "http://hook.test/elsewhere"})

    result, _, _ = await timed(client(redirect))
    assert seen == ["/h"]
    assert (result.status_code, result.error, result.outcome) == (302, None, "pending")


async def test_the_request_is_signed_and_asks_for_an_uncompressed_answer() -> None:
    seen: list[httpx.Request] = []

    async def ok(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    result, response_start, _ = await timed(client(ok))
    [request] = seen
    secret = signing.subscription_secret("unit-test-signing-key", DUE.subscriber_id)
    Webhook(secret).verify(request.content, dict(request.headers))  # raises unless signed for this subscription
    assert request.headers["webhook-id"] == "n-1"
    assert request.headers[webhooks.NOTICE_ID_HEADER] == "n-1"
    assert request.headers["Accept-Encoding"] == "identity"
    assert request.content == DUE.body
    assert (result.status_code, result.outcome, response_start) == (204, "delivered", "")


async def test_a_transport_error_is_recorded_without_a_status() -> None:
    async def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result, _, _ = await timed(client(refused))
    assert (result.status_code, result.error) == (None, "ConnectError: connection refused")


def test_the_client_neither_follows_redirects_nor_trusts_the_environment() -> None:
    http = webhooks.client_for(SETTINGS)
    assert (http.follow_redirects, http.trust_env) == (False, False)


def test_the_lease_outlives_the_deadline_and_the_record() -> None:
    with pytest.raises(ValidationError):
        WebhookSettings(timeout_seconds=10, lease_seconds=10 + RECORD_SECONDS)
    assert WebhookSettings(timeout_seconds=10, lease_seconds=10 + RECORD_SECONDS + 1).lease_seconds > 10
