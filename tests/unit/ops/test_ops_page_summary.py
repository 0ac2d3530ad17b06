"""The ops page without JavaScript (`/summary`): rendered from a synthetic sample with hostile names, and its door
(Basic or Bearer, 401 with a Basic challenge), without Kafka: requests refused at the door never wait for a sample."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from fivecogs_ops.lag.overall import overall
from fivecogs_ops.lag.summary import render_summary
from fivecogs_ops.lag.summary_auth import as_bearer
from tests.unit.ops.test_ops_page_auth import TOKEN, client

HOSTILE = '<script>alert("x")</script>'


def hostile_sample() -> dict[str, Any]:
    """Everything that comes from the cluster or a database carries markup; a dead letter waits."""
    body: dict[str, Any] = {
        "time": 1_796_300_000.0,
        "refresh_seconds": 3.0,
        "error": None,
        "status": "STOP",
        "groups": [
            {
                "group": f"fivecogs-{HOSTILE}",
                "status": "STOP",
                "reason": f"t/0: {HOSTILE}",
                "lag": 15,
                "lag_seconds": 4.2,
            },
            {"group": "fivecogs-inputs", "status": "OK", "reason": "caught up", "lag": 0, "lag_seconds": 0.0},
        ],
        "dlq": [{"topic": f"fivecogs.{HOSTILE}.dlq", "waiting": 3, "total": 1234}],
        "outbox": [{"service": HOSTILE, "schema": "inputs", "rows": 2, "oldest_seconds": 75.0, "parked": 1}],
        "held": [
            {
                "service": "inputs",
                "schema": "inputs",
                "count": 1,
                "by_reason": [
                    {"reason": f"rule:{HOSTILE}", "count": 1, "oldest_seconds": 290.0, "expires_in_seconds": -10.0}
                ],
            },
            {"service": "marketing", "schema": "marketing", "count": None, "by_reason": []},
        ],
    }
    return body | {"overall": overall(body)}


def test_every_value_is_escaped_and_the_page_runs_no_script() -> None:
    page = render_summary(hostile_sample())
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    # group, its reason, the overall reasons, the topic, the service, the held reason
    assert page.count("&lt;script&gt;") >= 6


def test_the_summary_shows_the_overall_status_its_reasons_and_every_panel() -> None:
    page = render_summary(hostile_sample())
    assert '<meta http-equiv="refresh" content="3">' in page
    assert '<span id="overall" class="badge STOP">STOP</span>' in page
    assert "sampled 12:13:20 UTC" in page
    assert "3 dead letters waiting in fivecogs.&lt;script&gt;" in page
    assert "1 outbox row parked in &lt;script&gt;" in page
    assert '<td class="num">1,234</td>' in page  # the dead letters' total beside the waiting
    assert '<td class="num">over</td>' in page  # a held event past the end of its wait
    assert '<span class="mono">marketing</span></td><td class="empty" colspan="3">no table</td>' in page
    assert ">15<" in page
    assert ">4s<" in page


def test_a_status_is_never_a_raw_class_name() -> None:
    body = hostile_sample() | {"overall": {"status": 'OK" onclick="x', "reasons": []}}
    page = render_summary(body)
    assert 'class="badge UNKNOWN">OK&quot; onclick=&quot;x</span>' in page
    assert "Nothing: no group behind" in page


def test_parts_not_read_say_so() -> None:
    body = hostile_sample() | {"outbox": None, "held": None, "dlq": None, "error": "Kafka: <down>"}
    page = render_summary(body | {"overall": overall(body)})
    assert page.count("could not be read") == 3
    assert '<div id="error">Kafka: &lt;down&gt;</div>' in page
    assert 'class="badge STOP"' in page


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_credentials_read_as_the_bearer_token() -> None:
    assert as_bearer(basic("anyone", TOKEN).encode()) == f"Bearer {TOKEN}".encode()
    assert as_bearer(basic("", "a:b").encode()) == b"Bearer a:b"  # a token may hold a colon, a user name not
    assert as_bearer(b"basic " + base64.b64encode(b"x:y")) == b"Bearer y"  # the scheme in any case
    assert as_bearer(b"Basic not*base64") == b"Basic"
    assert as_bearer(b"Basic " + base64.b64encode(b"no-colon")) == b"Basic"
    assert as_bearer(f"Bearer {TOKEN}".encode()) == f"Bearer {TOKEN}".encode()


@pytest.mark.parametrize(
    ("authorization", "why"),
    [
        (None, "no operator token: give any user name and the operator token as the password"),
        (basic("operator", TOKEN[:-1]), "that is not an operator token"),
        (f"Bearer {TOKEN}x", "that is not an operator token"),
        ("Basic %%%", "no operator token"),
        (basic("operator", ""), "no operator token"),
        ("Digest username=x", "no operator token"),
    ],
)
async def test_the_summary_without_the_token_is_401_with_a_basic_challenge(
    tmp_path: Path, authorization: str | None, why: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with client(tmp_path) as http:
        response = await http.get("/summary", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="fivecogs ops"'
    assert f"Not authorised: {why}" in response.text
    assert TOKEN[:-1] not in response.text
    assert "<script" not in response.text
    assert "group" not in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp
    assert "default-src 'none'" in csp


async def test_two_authorization_headers_are_refused(tmp_path: Path) -> None:
    headers = [("Authorization", basic("a", TOKEN)), ("Authorization", f"Bearer {TOKEN}")]
    async with client(tmp_path) as http:
        response = await http.get("/summary", headers=headers)
    assert response.status_code == 401


async def test_a_summary_without_tokens_is_locked(tmp_path: Path) -> None:
    async with client(tmp_path, tokens=()) as http:
        response = await http.get("/summary", headers={"Authorization": basic("operator", TOKEN)})
    assert response.status_code == 401
    assert "no operator token is configured" in response.text
