"""No webhook holds the worker (issue 10), on the real broker and database: endpoints that drip, never answer,
redirect or answer without end each cost one bounded attempt, never more than one at a time per subscriber,
while the other subscribers' notices go out at once; the response body read stays small."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import pytest

from fivecogs_communication.app import definition
from fivecogs_communication.domain import notice_id
from fivecogs_communication.webhooks import RECORD_SECONDS, WebhookSettings
from fivecogs_shared.contracts import events_topic
from fivecogs_shared.service import Runtime
from tests.integration.test_communication_service import (
    LISTED,
    SECRET,
    _listing,
    attempts,
    delivery,
    eventually,
    subscribe,
)
from tests.support import Partner, free_port, wait_caught_up

pytestmark = pytest.mark.integration

# A province no other test uses, so that no one else's listings notify these subscribers.
PROVINCE = "Satun"
TIMEOUT = 3.0  # the whole-request deadline in these tests
MARGIN = 1.0  # allowed past it: cancelling the request and closing its connection
HUGE_BYTES = 200 * 1024 * 1024
MiB = 1024 * 1024


def _bounded_service(timeout_seconds: float = TIMEOUT) -> Any:
    # One attempt per delivery, so every bad endpoint ends as exactly one failed attempt per notice.
    # The endpoints listen on 127.0.0.1: that takes the development-only setting, said explicitly.
    settings = WebhookSettings(
        secret=SECRET,
        timeout_seconds=timeout_seconds,
        lease_seconds=timeout_seconds + RECORD_SECONDS + 5,
        max_attempts=1,
        poll_seconds=0.1,
        environment="development",
        allow_loopback=True,
    )
    return definition(settings)


@asynccontextmanager
async def caught_up(run_service, stack_env, timeout_seconds: float = TIMEOUT) -> AsyncIterator[Runtime]:
    """The service, once its fresh consumer group has read the upstream topics' history: our subscribers,
    stored after that, are notified of our events only."""
    async with run_service(_bounded_service(timeout_seconds)) as runtime:
        topics = [events_topic(cog) for cog in ("knowledge", "marketing", "management")]
        await wait_caught_up(stack_env.kafka, runtime.settings.group_id, topics)
        yield runtime


@dataclass
class Endpoints:
    """Misbehaving and well-behaved webhook endpoints on one local server, each path its own behaviour."""

    port: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    hits: dict[str, list[str]] = field(default_factory=dict)  # path -> notice ids, in arrival order
    huge_bytes_sent: list[int] = field(default_factory=list)  # per /huge request, until the client hung up
    drip_ended: list[float] = field(default_factory=list)  # monotonic time each /drip connection was dropped

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def of(self, path: str) -> list[str]:
        return self.hits.get(path, [])


class _Handler(BaseHTTPRequestHandler):
    endpoints: Endpoints
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.lock:
            self.endpoints.hits.setdefault(self.path, []).append(self.headers.get("X-Fivecogs-Notice-Id", ""))
        behaviour = self.path.split("/")[1]
        getattr(self, f"_{behaviour}")()

    def _ok(self) -> None:
        self._answer(200)

    def _target(self) -> None:
        self._answer(200)

    def _redirect(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.endpoints.url("/target"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _silent(self) -> None:  # accepts, reads the request, never answers
        self.endpoints.stop.wait()
        self.close_connection = True

    def _drip(self) -> None:
        # A status line, then a header that never ends, one byte a second: every read gets data in time, so
        # only a deadline for the whole request ends it.
        stream = itertools.chain(b"HTTP/1.1 200 OK\r\nX-Drip: ", itertools.repeat(ord("a")))
        try:
            for byte in stream:
                self.wfile.write(bytes([byte]))
                if self.endpoints.stop.wait(1.0):
                    break
        except OSError:  # the client hung up
            self.endpoints.drip_ended.append(time.monotonic())
        self.close_connection = True

    def _huge(self) -> None:
        # 200 MB made lazily, 64 KiB at a time: nothing here grows with it.
        chunk, sent = b"z" * 64 * 1024, 0
        self.send_response(200)
        self.send_header("Content-Length", str(HUGE_BYTES))
        self.end_headers()
        try:
            while sent < HUGE_BYTES and not self.endpoints.stop.is_set():
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
        self.endpoints.huge_bytes_sent.append(sent)
        self.close_connection = True

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def endpoints() -> Iterator[Endpoints]:
    found = Endpoints()
    handler = type("Handler", (_Handler,), {"endpoints": found})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.stop.set()  # releases the silent and dripping handlers
        server.shutdown()
        server.server_close()


class RssSampler:
    """The peak of this process's resident memory (VmRSS) above where it was at the start."""

    def __init__(self) -> None:
        self.baseline = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        match = re.search(r"^VmRSS:\s+(\d+) kB", status.read(), re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


@pytest.fixture
def no_proxy_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies in the environment that lead nowhere: a worker that honoured them would reach no endpoint."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, nowhere)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


async def _all_finished(runtime: Runtime, notices: list[str]) -> bool:
    rows = [await delivery(runtime, n) for n in notices]
    return all(row is not None and row["status"] != "pending" for row in rows)


def _ends(tried: list[Any]) -> list[tuple[Any, Any]]:
    return [(a["attempted_at"], a["attempted_at"] + timedelta(milliseconds=a["duration_ms"])) for a in tried]


BAD = ("drip", "silent", "redirect", "huge")
GOOD = ("ok-1", "ok-2", "ok-3")


async def test_bad_endpoints_cost_one_bounded_attempt_each_and_hold_no_one_else(
    run_service, stack_env, partner: Partner, no_proxy_allowed: None
) -> None:
    u = uuid.uuid4().hex[:8]
    with endpoints() as hooks:
        async with (
            Partner(stack_env.kafka, source="fivecogs/marketing") as marketing,
            caught_up(run_service, stack_env) as runtime,
        ):
            await subscribe(
                partner,
                runtime,
                *(
                    {"subscriber_id": f"{u}-{name}", "topics": ["listing"], "provinces": [PROVINCE]}
                    | {"webhook_url": hooks.url(f"/{name.split('-')[0]}/{name}")}
                    for name in BAD + GOOD
                ),
            )
            # Two notices per subscriber: a bad endpoint's second must wait for its first, nobody else's.
            listed = [
                await marketing.send(events_topic("marketing"), LISTED, _listing(f"{u}{i}", PROVINCE), f"prod-{u}{i}")
                for i in range(2)
            ]
            notices = {name: [notice_id(f"{u}-{name}", event) for event in listed] for name in BAD + GOOD}
            everything = [n for ns in notices.values() for n in ns]
            await eventually(lambda: _all_finished(runtime, everything), timeout=60)
            rows = {n: await delivery(runtime, n) for n in everything}
            tried = {name: [a for n in ns for a in await attempts(runtime, n)] for name, ns in notices.items()}
            # The server threads see a dropped connection at their next write or so.
            await eventually(lambda: len(hooks.drip_ended) == 2 and len(hooks.huge_bytes_sent) == 2, timeout=10)

    for name in BAD + GOOD:
        print(f"{name}: attempts {[(a['status_code'], a['duration_ms']) for a in tried[name]]} ms")
    # The well-behaved subscribers got both notices within moments, long before any slow attempt ended.
    first_slow_end = min(end for name in ("drip", "silent") for _, end in _ends(tried[name]))
    for name in GOOD:
        assert sorted(hooks.of(f"/ok/{name}")) == sorted(notices[name])
        for n in notices[name]:
            assert rows[n]["status"] == "delivered"
            assert rows[n]["finished_at"] - rows[n]["created_at"] < timedelta(seconds=TIMEOUT - 0.5)
            assert rows[n]["finished_at"] < first_slow_end

    # Dripping and silent endpoints: one attempt per notice, each ended by the deadline, with an error.
    for name in ("drip", "silent"):
        assert [(a["attempt"], a["status_code"]) for a in tried[name]] == [(1, None), (1, None)]
        for a in tried[name]:
            assert TIMEOUT * 1000 <= a["duration_ms"] <= (TIMEOUT + MARGIN) * 1000
            assert a["error"] == f"Timeout: no complete answer within {TIMEOUT:g}s"
        assert all(rows[n]["status"] == "failed" for n in notices[name])
        # One attempt at a time per subscriber: the second notice was sent only after the first attempt ended.
        (_, first_end), (second_start, _) = sorted(_ends(tried[name]))
        assert second_start >= first_end
    assert len(hooks.drip_ended) == 2  # the worker hung up on the dripping endpoint both times

    # A redirect is a failed attempt with its status; its target is never called.
    assert [(a["status_code"], a["error"]) for a in tried["redirect"]] == [(302, None), (302, None)]
    assert all(rows[n]["status"] == "failed" for n in notices["redirect"])
    assert hooks.of("/target") == []

    # A 200 with 200 MB behind it is delivered on its status, after reading a sliver of the body.
    assert [(a["status_code"], a["error"]) for a in tried["huge"]] == [(200, None), (200, None)]
    assert all(rows[n]["status"] == "delivered" for n in notices["huge"])
    assert all(a["duration_ms"] < TIMEOUT * 1000 for a in tried["huge"])
    assert len(hooks.huge_bytes_sent) == 2
    assert all(sent < 64 * MiB for sent in hooks.huge_bytes_sent)  # what the socket buffers took, not 200 MB


async def test_a_huge_answer_does_not_grow_memory(run_service, stack_env, partner: Partner) -> None:
    u = uuid.uuid4().hex[:8]
    with endpoints() as hooks:
        async with (
            Partner(stack_env.kafka, source="fivecogs/marketing") as marketing,
            caught_up(run_service, stack_env) as runtime,
        ):
            await subscribe(
                partner,
                runtime,
                {"subscriber_id": f"{u}-huge", "topics": ["listing"], "provinces": [PROVINCE]}
                | {"webhook_url": hooks.url("/huge/h")},
            )
            with RssSampler() as rss:
                listed = await marketing.send(events_topic("marketing"), LISTED, _listing(u, PROVINCE), f"prod-{u}")
                notice = notice_id(f"{u}-huge", listed)
                await eventually(lambda: _all_finished(runtime, [notice]))
            [tried] = await attempts(runtime, notice)
            await eventually(lambda: hooks.huge_bytes_sent, timeout=10)

    assert (tried["status_code"], tried["error"]) == (200, None)
    print(f"huge answer: attempt {tried['duration_ms']} ms, RSS growth {rss.growth / MiB:.1f} MiB")
    assert rss.growth < 50 * MiB
    [sent] = hooks.huge_bytes_sent
    assert sent < 64 * MiB


async def test_stopping_the_service_cancels_attempts_in_flight(run_service, stack_env, partner: Partner) -> None:
    u = uuid.uuid4().hex[:8]
    with endpoints() as hooks:
        async with Partner(stack_env.kafka, source="fivecogs/marketing") as marketing:
            # A deadline far away: only the cancellation can end this attempt within the test.
            async with caught_up(run_service, stack_env, timeout_seconds=30) as runtime:
                await subscribe(
                    partner,
                    runtime,
                    {"subscriber_id": f"{u}-drip", "topics": ["listing"], "provinces": [PROVINCE]}
                    | {"webhook_url": hooks.url("/drip/d")},
                )
                listed = await marketing.send(events_topic("marketing"), LISTED, _listing(u, PROVINCE), f"prod-{u}")
                notice = notice_id(f"{u}-drip", listed)
                await eventually(lambda: hooks.of("/drip/d") == [notice])
                stopping = time.monotonic()
            left = [t for t in asyncio.all_tasks() if t.get_name().startswith("webhook-") and not t.done()]
            # The server notices a dropped connection at its next write or the one after (one a second).
            await eventually(lambda: hooks.drip_ended, timeout=10)
        schema = runtime.settings.schema_name
        conn = await asyncpg.connect(stack_env.database_url, server_settings={"search_path": schema})
        try:
            row = await conn.fetchrow(
                "SELECT status, attempts, leased_until > now() AS leased FROM webhook_deliveries WHERE notice_id = $1",
                notice,
            )
            recorded = await conn.fetchval("SELECT count(*) FROM webhook_attempts WHERE notice_id = $1", notice)
        finally:
            await conn.close()

    assert left == []
    assert row is not None
    assert hooks.drip_ended[0] - stopping < 5
    # Not recorded, still leased: when the lease ends another worker sends it again (at least once).
    assert (row["status"], row["attempts"], row["leased"], recorded) == ("pending", 0, True, 0)
