"""The ops page server's token check (the services' own `BearerAuth`), without Kafka: the sampler never runs here,
so a request that got past the check would wait for a sample; these are all answered at the door."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr

from fivecogs_ops.lag.page import PageConfig, create_app
from fivecogs_ops.lag.store import SampleStore
from fivecogs_shared.kafka_access import KafkaAccess

TOKEN = "ops-page-operator-token-0001"


def client(tmp_path: Path, tokens: tuple[str, ...] = (TOKEN,)) -> httpx.AsyncClient:
    config = PageConfig(
        KafkaAccess("127.0.0.1:1", "PLAINTEXT"),
        "postgresql://nobody@127.0.0.1:1/none",
        SampleStore(tmp_path / "samples.sqlite3"),
        tokens=tuple(SecretStr(token) for token in tokens),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(config)), base_url="http://ops")


async def test_the_json_needs_the_token(tmp_path: Path) -> None:
    async with client(tmp_path) as http:
        missing = await http.get("/api/lag")
        wrong = await http.get("/api/lag", headers={"Authorization": f"Bearer {TOKEN[:-1]}"})
        basic = await http.get("/api/lag", headers={"Authorization": f"Basic {TOKEN}"})
    assert (missing.status_code, missing.json()) == (401, {"error": "missing bearer token"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid bearer token"})
    assert basic.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")


async def test_the_page_shell_and_the_probe_are_open(tmp_path: Path) -> None:
    async with client(tmp_path) as http:
        page = await http.get("/")
        health = await http.get("/healthz")
        other = await http.get("/favicon.ico")
    assert page.status_code == 200
    assert "location.hash" in page.text  # it reads the token from the fragment…
    assert "Authorization: `Bearer ${token}`" in page.text  # …and sends it as a header
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert health.json() == {"status": "ok", "sampled": False}
    assert other.status_code == 401  # only those two paths are open


async def test_a_page_without_tokens_is_locked(tmp_path: Path) -> None:
    async with client(tmp_path, tokens=()) as http:
        response = await http.get("/api/lag", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 401
    assert "no operator token is configured" in response.json()["error"]
