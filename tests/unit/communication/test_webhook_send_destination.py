"""Every send checks its destination again and connects to the address it checked: a name re-pointed at a
forbidden address after the subscription (DNS rebinding) is never reached, the subscriber's server still sees
its own host name (Host header, TLS name and certificate), and proxies from the environment are ignored."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from shutil import which

import httpx
import pytest

from fivecogs_communication import destinations, store, webhooks
from fivecogs_communication.webhooks import WebhookSettings

SETTINGS = WebhookSettings(secret="unit-test-signing-key", timeout_seconds=2, lease_seconds=10, max_attempts=3)
# Local test servers are on 127.0.0.1: reaching them takes the development-only setting, said explicitly.
LOOPBACK = WebhookSettings(
    secret="unit-test-signing-key",
    timeout_seconds=2,
    lease_seconds=10,
    max_attempts=3,
    environment="development",
    allow_loopback=True,
)
PUBLIC = "93.184.216.34"


def due(url: str) -> store.DueDelivery:
    return store.DueDelivery("n-1", "sub-1", url, b'{"notice_id":"n-1"}', attempts=0)


class Answers:
    """A resolver whose answer for each name changes from one lookup to the next (the last one repeats)."""

    def __init__(self, **answers: list[Sequence[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        sequence = self.answers[host.replace(".", "_")]
        return sequence.pop(0) if len(sequence) > 1 else sequence[0]


def recording_client(seen: list[httpx.Request], status: int = 200) -> httpx.AsyncClient:
    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer), follow_redirects=False)


async def test_the_request_goes_to_the_checked_address_with_the_host_name_kept() -> None:
    seen: list[httpx.Request] = []
    policy = destinations.DestinationPolicy(resolver=Answers(hooks_partner_example=[[PUBLIC]]))
    async with recording_client(seen) as http:
        result, _, refusal = await webhooks.attempt(
            http, due("https://hooks.partner.example:8443/h?x=1"), SETTINGS, policy
        )
    [request] = seen
    assert (result.outcome, refusal) == ("delivered", None)
    assert (request.url.host, request.url.port, request.url.raw_path) == (PUBLIC, 8443, b"/h?x=1")
    assert request.headers["Host"] == "hooks.partner.example:8443"
    assert request.extensions["sni_hostname"] == "hooks.partner.example"  # httpcore's TLS server name


async def test_a_name_rebound_to_loopback_after_its_subscription_is_refused_at_send() -> None:
    # The subscription's check saw a public address; by the send the name points at this machine.
    resolver = Answers(rebind_example=[[PUBLIC], ["127.0.0.1"]])
    policy = destinations.DestinationPolicy(resolver=resolver)
    await policy.check("http://rebind.example/h")  # what the subscription handler does
    seen: list[httpx.Request] = []
    async with recording_client(seen) as http:
        result, response_start, refusal = await webhooks.attempt(http, due("http://rebind.example/h"), SETTINGS, policy)
    assert seen == []  # nothing was sent anywhere
    assert resolver.lookups == ["rebind.example", "rebind.example"]  # resolved again at the send
    assert refusal == "rebind.example resolves to 127.0.0.1, a loopback address"
    # Given up at once, on the first of three attempts: no retry can make the address allowed.
    assert (result.number, result.outcome, result.status_code, result.retry_in_seconds) == (1, "failed", None, 0.0)
    assert result.error == "destination refused: rebind.example resolves to 127.0.0.1, a loopback address"
    assert response_start == ""


async def test_a_literal_forbidden_address_is_refused_at_send_without_a_request() -> None:
    seen: list[httpx.Request] = []
    async with recording_client(seen) as http:
        result, _, refusal = await webhooks.attempt(http, due("http://169.254.169.254/latest"), SETTINGS)
    assert seen == []
    assert refusal == "169.254.169.254 is a link-local address"
    assert result.outcome == "failed"


async def test_a_name_that_does_not_resolve_at_send_is_an_ordinary_failed_attempt() -> None:
    async def nxdomain(host: str, port: int) -> Sequence[str]:
        raise OSError("Name or service not known")

    seen: list[httpx.Request] = []
    async with recording_client(seen) as http:
        result, _, refusal = await webhooks.attempt(
            http, due("http://gone.example/h"), SETTINGS, destinations.DestinationPolicy(resolver=nxdomain)
        )
    assert seen == []
    assert refusal is None
    assert (result.outcome, result.error) == ("pending", "Unresolved: gone.example does not resolve")


# --- against real local servers ------------------------------------------------------------------------------


@dataclass
class Seen:
    hosts: list[str] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    port: int = 0


@contextmanager
def local_server(tls: ssl.SSLContext | None = None) -> Iterator[Seen]:
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.hosts.append(self.headers.get("Host", ""))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:

        def hear_server_name(_: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
            seen.server_names.append(name)

        tls.sni_callback = hear_server_name
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    seen.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def loopback_policy(name: str) -> destinations.DestinationPolicy:
    async def resolve(host: str, port: int) -> Sequence[str]:
        assert host == name
        return ["127.0.0.1"]

    return destinations.DestinationPolicy(allow_loopback=True, resolver=resolve)


@pytest.fixture
def dead_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies that lead nowhere: a client that honoured them would reach no endpoint."""
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing listens there
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, nowhere)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


async def test_the_server_at_the_checked_address_sees_the_host_name_and_proxies_are_ignored(
    dead_proxies: None,
) -> None:
    with local_server() as seen:
        async with webhooks.client_for(LOOPBACK) as http:
            result, _, _ = await webhooks.attempt(
                http, due(f"http://hooks.partner.test:{seen.port}/h"), LOOPBACK, loopback_policy("hooks.partner.test")
            )
    assert (result.status_code, result.outcome, result.error) == (204, "delivered", None)
    assert seen.hosts == [f"hooks.partner.test:{seen.port}"]


async def test_the_settings_policy_refuses_loopback_unless_allowed(dead_proxies: None) -> None:
    with local_server() as seen:
        async with webhooks.client_for(SETTINGS) as http:
            refused, _, why = await webhooks.attempt(http, due(f"http://127.0.0.1:{seen.port}/h"), SETTINGS)
        async with webhooks.client_for(LOOPBACK) as http:
            allowed, _, _ = await webhooks.attempt(http, due(f"http://127.0.0.1:{seen.port}/h"), LOOPBACK)
    assert (refused.outcome, why) == ("failed", "127.0.0.1 is a loopback address")
    assert (allowed.outcome, allowed.status_code) == ("delivered", 204)
    assert seen.hosts == [f"127.0.0.1:{seen.port}"]  # one request: the allowed one


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Self-signed certificates (key and certificate in one file) for two names."""
    if which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    folder = tmp_path_factory.mktemp("tls")
    made = {}
    for name in ("hooks.partner.test", "other.test"):
        key, cert = folder / f"{name}.key", folder / f"{name}.pem"
        request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}"]
        names = ["-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)]
        subprocess.run(["openssl", *request, *names], check=True, capture_output=True)
        made[name] = cert
        (folder / f"{name}.both").write_bytes(key.read_bytes() + cert.read_bytes())
        made[f"{name}.both"] = folder / f"{name}.both"
    return made


def server_tls(certificates: dict[str, Path], name: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates[f"{name}.both"])
    return context


def client_trusting(certificates: dict[str, Path]) -> httpx.AsyncClient:
    # As client_for, trusting the two test certificates instead of the public authorities.
    trust = ssl.create_default_context(cafile=str(certificates["hooks.partner.test"]))
    trust.load_verify_locations(cafile=str(certificates["other.test"]))
    return httpx.AsyncClient(verify=trust, follow_redirects=False, trust_env=False)


async def test_tls_asks_for_and_verifies_the_host_name_not_the_address(certificates: dict[str, Path]) -> None:
    policy = loopback_policy("hooks.partner.test")
    with local_server(server_tls(certificates, "hooks.partner.test")) as seen:
        async with client_trusting(certificates) as http:
            result, _, _ = await webhooks.attempt(
                http, due(f"https://hooks.partner.test:{seen.port}/h"), LOOPBACK, policy
            )
    assert (result.status_code, result.outcome, result.error) == (204, "delivered", None)
    assert seen.server_names == ["hooks.partner.test"]  # SNI: the name, though the connection went to 127.0.0.1
    assert seen.hosts == [f"hooks.partner.test:{seen.port}"]


async def test_a_certificate_for_another_name_at_the_checked_address_is_refused(certificates: dict[str, Path]) -> None:
    policy = loopback_policy("hooks.partner.test")
    with local_server(server_tls(certificates, "other.test")) as seen:
        async with client_trusting(certificates) as http:
            result, _, _ = await webhooks.attempt(
                http, due(f"https://hooks.partner.test:{seen.port}/h"), LOOPBACK, policy
            )
    assert (result.status_code, result.outcome) == (None, "pending")
    assert result.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert seen.hosts == []
