"""The bearer-token check in front of every service's HTTP routes (and the ops page's), attacked from outside.

The app here is a stand-in with the services' open paths and one protected route, so each refusal is the
middleware's own; tests/integration/test_management_service.py runs the same against the real management API."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket

from fivecogs_shared.http import BearerAuth, authorization_error, token_matches

CURRENT = "current-token-abcdefghijklmnop"
PREVIOUS = "previous-token-qrstuvwxyz012345"


async def _secret(_: Request) -> Response:
    return JSONResponse({"secret": "report"})


async def _open(request: Request) -> Response:
    return JSONResponse({"open": request.url.path})


async def _socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("secret")
    await websocket.close()


def app(tokens: tuple[str, ...]) -> Starlette:
    routes: list[BaseRoute] = [Route(path, _open) for path in ("/healthz", "/readyz", "/metrics")]
    routes += [Route("/v1/report/provinces", _secret), WebSocketRoute("/v1/live", _socket)]
    secrets = tuple(SecretStr(token) for token in tokens)
    return Starlette(routes=routes, middleware=[Middleware(BearerAuth, tokens=secrets)])


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app((CURRENT, PREVIOUS)))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        yield http


async def get(client: httpx.AsyncClient, authorization: str | None) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return await client.get("/v1/report/provinces", headers=headers)


def refused(response: httpx.Response, error: str) -> None:
    assert response.status_code == 401
    assert response.json() == {"error": error}
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_no_header_is_refused_as_missing(client: httpx.AsyncClient) -> None:
    refused(await get(client, None), "missing bearer token")


async def test_a_wrong_token_is_refused_as_invalid(client: httpx.AsyncClient) -> None:
    response = await get(client, "Bearer wrong")
    refused(response, "invalid bearer token")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]  # RFC 6750 §3.1


@pytest.mark.parametrize("guess", [CURRENT[:-1], CURRENT[:16], CURRENT + "x", CURRENT.upper(), f"{CURRENT},{PREVIOUS}"])
async def test_near_misses_are_invalid(client: httpx.AsyncClient, guess: str) -> None:
    refused(await get(client, f"Bearer {guess}"), "invalid bearer token")


async def test_other_schemes_carry_no_bearer_token(client: httpx.AsyncClient) -> None:
    basic = base64.b64encode(f"operator:{CURRENT}".encode()).decode()
    refused(await get(client, f"Basic {basic}"), "missing bearer token")
    refused(await get(client, CURRENT), "missing bearer token")  # the token alone, no scheme
    refused(await get(client, "Bearer"), "missing bearer token")
    refused(await get(client, "Bearer "), "missing bearer token")


async def test_the_scheme_is_case_insensitive_as_rfc_7235_says(client: httpx.AsyncClient) -> None:
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert (await get(client, f"{scheme} {CURRENT}")).status_code == 200


async def test_the_token_itself_is_case_sensitive(client: httpx.AsyncClient) -> None:
    refused(await get(client, f"Bearer {CURRENT.swapcase()}"), "invalid bearer token")


async def test_the_current_and_the_previous_token_both_pass(client: httpx.AsyncClient) -> None:
    for token in (CURRENT, PREVIOUS):
        response = await client.get("/v1/report/provinces", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert response.json() == {"secret": "report"}


async def test_two_authorization_headers_are_refused(client: httpx.AsyncClient) -> None:
    headers = [("Authorization", f"Bearer {CURRENT}"), ("Authorization", "Bearer wrong")]
    response = await client.get("/v1/report/provinces", headers=headers)
    assert (response.status_code, response.json()) == (401, {"error": "invalid bearer token"})


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_probes_and_scrapers_need_no_token(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert (response.status_code, response.json()) == (200, {"open": path})


async def test_unknown_paths_are_refused_before_routing(client: httpx.AsyncClient) -> None:
    """Without a token nobody learns which routes exist: 401, not 404; lookalikes of open paths are not open."""
    for path in ("/v1/nothing", "/healthz/", "/metrics/../v1/report/provinces", "/HEALTHZ"):
        assert (await client.get(path)).status_code == 401, path
    assert (await client.get("/v1/nothing", headers={"Authorization": f"Bearer {CURRENT}"})).status_code == 404


async def test_other_methods_are_refused_too(client: httpx.AsyncClient) -> None:
    for method in ("POST", "HEAD", "OPTIONS", "DELETE"):
        assert (await client.request(method, "/v1/report/provinces")).status_code == 401, method


async def test_a_refusal_never_echoes_what_was_sent(client: httpx.AsyncClient) -> None:
    sent = f"{CURRENT[:-1]}Z"
    response = await client.get("/v1/report/provinces", headers={"Authorization": f"Bearer {sent}"})
    assert sent not in response.text
    assert sent not in str(response.headers)


async def test_without_configured_tokens_every_protected_route_is_locked() -> None:
    transport = httpx.ASGITransport(app=app(()))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as locked:
        for authorization in (None, f"Bearer {CURRENT}", "Bearer "):
            response = await get(locked, authorization)
            assert response.status_code == 401
            assert "no operator token is configured" in response.json()["error"]
        assert (await locked.get("/healthz")).status_code == 200


async def websocket(headers: list[tuple[bytes, bytes]]) -> list[Message]:
    """What the app sends to a client that opens /v1/live (and closes once it has an answer)."""
    scope = {"type": "websocket", "path": "/v1/live", "headers": headers, "query_string": b"", "subprotocols": []}
    incoming: list[Message] = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app((CURRENT,))(scope, receive, send)
    return sent


async def test_a_websocket_without_a_token_is_closed_before_it_opens() -> None:
    assert await websocket([]) == [{"type": "websocket.close", "code": 1008}]
    opened = await websocket([(b"authorization", f"Bearer {CURRENT}".encode())])
    assert [m["type"] for m in opened][:2] == ["websocket.accept", "websocket.send"]
    assert opened[1]["text"] == "secret"


def test_token_matches_compares_whole_tokens_only() -> None:
    tokens = (SecretStr(CURRENT), SecretStr(PREVIOUS))
    assert token_matches(CURRENT.encode(), tokens)
    assert token_matches(PREVIOUS.encode(), tokens)
    assert not token_matches(b"", tokens)
    assert not token_matches(CURRENT.encode()[:-1], tokens)
    assert not token_matches(CURRENT.encode(), ())
    assert not token_matches("ç".encode() + CURRENT.encode(), tokens)  # any bytes: no TypeError, just False


def test_authorization_error_in_its_own_words() -> None:
    tokens = (SecretStr(CURRENT),)
    assert authorization_error([f"Bearer {CURRENT}".encode()], tokens) is None
    assert authorization_error([f"  bearer   {CURRENT}  ".encode()], tokens) is None  # 1*SP, surrounding space
    assert authorization_error([], tokens) == "missing bearer token"
    assert authorization_error([b"Bearer nope"], tokens) == "invalid bearer token"
    assert authorization_error([f"Bearer {CURRENT}".encode()], ()) is not None
