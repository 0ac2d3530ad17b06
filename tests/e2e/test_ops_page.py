"""The operators' page in a real headless Chromium: a stopped inputs service shows as STALL/STOP with the right
lag; restarted, it returns to OK with lag 0. An event inputs holds (a delivery for an enterprise never registered)
shows in the held events panel, also while the service is stopped. A dead letter waiting makes the overall status
WARN with its reason, on the page and on `/summary`, which Chromium renders with JavaScript disabled. Screenshots
land in test-artifacts/. The page is opened at the address `fivecogs ops --print-url` prints (the operator token in
its fragment); its JSON and the summary refuse requests without it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from fivecogs_ops.held import ServiceSchema, held_events
from fivecogs_ops.services import ServiceProcesses
from fivecogs_shared import db, kafka_admin
from fivecogs_shared.contracts import COGS
from tests.integration.test_held import DELIVERED, delivery
from tests.integration.test_lag import INGEST, drop_schema, publish, records_between, start_at_end
from tests.support import PARTNER_SOURCE, Partner, free_port, operator_token

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
EVENTS = 15
CHROMIUM_FLAGS = [
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = os.environ.get("FIVECOGS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    message = "Debian's chromium is needed (apt-get install chromium), or FIVECOGS_CHROMIUM=/path/to/it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def start_page(prefix: str, env: dict[str, str], tmp: Path, port: int, *options: str) -> subprocess.Popen[bytes]:
    """`fivecogs ops` as a process; what it prints goes to ops.out (stdout) and ops.log (stderr)."""
    command = [sys.executable, "-m", "fivecogs_ops.lag", "ops", "--port", str(port), "--prefix", prefix]
    command += [
        "--window",
        "5",
        "--interval",
        "1",
        "--store",
        str(tmp / "samples.sqlite3"),
        *options,
    ]  # options last: they win
    out, log = (tmp / "ops.out").open("ab"), (tmp / "ops.log").open("ab")
    page = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return page
        except httpx.HTTPError:
            time.sleep(0.2)
    page.terminate()
    raise AssertionError(f"the ops page did not start; see {tmp / 'ops.log'}")


def stop_page(page: subprocess.Popen[bytes]) -> None:
    page.terminate()
    page.wait(10)


async def test_the_page_data_needs_the_operator_token(stack_env, tmp_path) -> None:
    """No browser needed: the JSON is refused without the token, the page shell is served, the token is not
    printed unless asked for."""
    port = free_port()
    page = await asyncio.to_thread(start_page, "opstest-locked-", stack_env.as_env(), tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=40) as client:
            missing = await client.get("/api/lag")
            wrong = await client.get("/api/lag", headers={"Authorization": f"Bearer {operator_token()[:-1]}x"})
            shell = await client.get("/")
            allowed = await client.get("/api/lag", headers={"Authorization": f"Bearer {operator_token()}"})
    finally:
        stop_page(page)
    assert (missing.status_code, missing.json()) == (401, {"error": "missing bearer token"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid bearer token"})
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert allowed.status_code == 200
    assert "groups" in allowed.json()
    assert shell.status_code == 200  # the page itself holds no data; a browser navigation carries no header
    assert "connect-src 'self'" in shell.headers["content-security-policy"]
    printed = (tmp_path / "ops.out").read_text() + (tmp_path / "ops.log").read_text()
    assert operator_token() not in printed
    assert "FIVECOGS_OPERATOR_TOKENS" in printed  # where the token is, instead


def card_shows(status: str, lag: int) -> str:
    """A JS predicate on the group's card as a person reads it (badge text, the big number): lag 0 exactly, or
    at least `lag` (another test may write to the topic too)."""
    compare = "lag === 0" if lag == 0 else f"lag >= {lag}"
    return f"""() => {{
        const card = document.querySelector('.group');
        if (!card) return false;
        const shown = card.querySelector('.badge.status').textContent;
        const lag = Number(card.querySelector('.value.lag').textContent.replaceAll(',', ''));
        return {status}.includes(shown) && {compare};
    }}"""


# The held events panel's row for inputs' deliveries waiting for their enterprise: its count, as shown.
HELD_ROW = '#held tr[data-service="inputs"][data-reason="rule:unknown_enterprise"]'
HELD_IN_PANEL = f"""() => {{
    const row = document.querySelector('{HELD_ROW}');
    return !!row && Number(row.querySelector('.held-count').textContent.replaceAll(',', '')) >= 1;
}}"""


# topic/partition, committed, log end of each row, as shown.
ROWS = """rows => rows.map(row => {
    const cells = [...row.querySelectorAll('td')].map(td => td.textContent.replaceAll(',', ''));
    const [topic, partition] = [cells[0].slice(0, cells[0].lastIndexOf('/')), cells[0].split('/').pop()];
    return [topic, Number(partition), Number(cells[1]), Number(cells[2])];
})"""


async def test_page_shows_a_stopped_consumer_then_its_recovery(stack_env, tmp_path) -> None:
    playwright = pytest.importorskip("playwright.async_api")
    browser_path = chromium()
    suffix = uuid.uuid4().hex[:8]
    # The group is within the inputs principal's (`fivecogs-inputs*`); the source a desk of the test partner's.
    prefix, schema, source = (
        f"fivecogs-inputs-ops{suffix}-",
        f"opstest_{suffix}_inputs",
        f"{PARTNER_SOURCE}/ops-{suffix}",
    )
    group = f"{prefix}g"
    service_port, page_port = free_port(), free_port()
    env = {**stack_env.as_env(), "FIVECOGS_INPUTS_CONSUMER_GROUP": group, "FIVECOGS_INPUTS_DB_SCHEMA": schema}
    services = ServiceProcesses(
        env=env,
        log_dir=tmp_path,
        ports={"inputs": service_port},
        kafka=stack_env.service_kafka(),
        operator_token=operator_token(),
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page_server = None
    try:
        await start_at_end(stack_env.kafka, group)  # the chart then shows only this test's climb and drain
        services.start("inputs")
        await asyncio.to_thread(services.wait_ready, ["inputs"], 90)
        # The page reads the test's schema, as it reads a deployment's: FIVECOGS_<COG>_DB_SCHEMA.
        page_env = {**stack_env.as_env(), "FIVECOGS_INPUTS_DB_SCHEMA": schema}
        page_server = await asyncio.to_thread(start_page, prefix, page_env, tmp_path, page_port, "--print-url")
        [address] = (tmp_path / "ops.out").read_text().split()  # stdout holds exactly the address asked for
        assert address == f"http://127.0.0.1:{page_port}/#token={operator_token()}"
        async with playwright.async_playwright() as p:
            browser = await p.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=browser_path,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1400, "height": 900},
            )
            page = await browser.new_page()
            requested: list[str] = []
            authorizations: set[str | None] = set()
            errors: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))

            def on_api(request: Any) -> None:  # playwright's Request
                if request.url.endswith("/api/lag"):
                    authorizations.add(request.headers.get("authorization"))

            page.on("request", on_api)
            await page.goto(address)
            await page.wait_for_function(card_shows("['OK']", 0), timeout=90_000)
            assert page.url == f"http://127.0.0.1:{page_port}/"  # the token left the address bar and the history

            # A delivery for an enterprise never registered: inputs holds it (for 300 s), the panel counts it.
            async with Partner(stack_env.kafka, source=source) as partner:
                unknown, batch = f"ent-ops-{suffix}", f"batch-ops-{suffix}"
                waiting = await partner.send(INGEST, DELIVERED, delivery(f"{batch}-d1", batch, unknown), batch)
            await page.wait_for_function(HELD_IN_PANEL, timeout=60_000)
            held = page.locator(HELD_ROW)
            assert await held.locator(".held-reason").inner_text() == "unknown_enterprise"
            assert (await held.locator("td").first.inner_text()).splitlines() == ["inputs", "unknown_enterprise"]
            [inputs] = await held_events(stack_env.database_url, [ServiceSchema("inputs", schema)])
            assert (waiting, f"enterprise:{unknown}") in [(e.event_id, e.awaits) for e in inputs.events]
            await page.wait_for_function(card_shows("['OK']", 0), timeout=60_000)  # held is not behind
            await page.wait_for_timeout(3000)  # a flat start on the chart

            assert services.stop("inputs") == 0
            committed = await kafka_admin.committed_offsets(stack_env.kafka, group)
            await publish(stack_env.kafka, source, EVENTS)
            await page.wait_for_function(card_shows("['STALL', 'STOP']", EVENTS), timeout=60_000)
            card = page.locator(f'[data-group="{group}"]')
            assert (await card.locator(".members").inner_text()).endswith("no members")
            # The header counts it: the overall status is the worst there is, the group among its reasons.
            assert await page.locator("#overall").inner_text() in ("STALL", "STOP")
            assert group in await page.locator("#reason-list").inner_text()
            rows = await card.locator("tbody tr").evaluate_all(ROWS)
            assert len([row for row in rows if row[0] == INGEST]) == 3  # one per partition of the partner's topic
            # The right lag: exactly the records past the committed offsets, ours among them (and others' if
            # another test wrote to the topic meanwhile).
            assert {TopicPartition(topic, p): c for topic, p, c, _ in rows} == committed
            shown = int((await card.get_attribute("data-lag")) or -1)
            ends = {TopicPartition(topic, p): end for topic, p, _, end in rows}
            behind = await records_between(stack_env.kafka, committed, ends)
            assert shown == len(behind)
            assert sum(dict(r.headers).get("ce_source") == source.encode() for r in behind) == EVENTS
            # The service is stopped, its held event still waits in its table: the panel still shows it.
            assert int(await held.locator(".held-count").inner_text()) >= 1
            await page.wait_for_timeout(2500)  # a few more samples, so the chart shows the climb
            await page.screenshot(path=str(ARTIFACTS / "ops-page-behind.png"), full_page=True)

            services.start("inputs")
            await asyncio.to_thread(services.wait_ready, ["inputs"], 90)
            await page.wait_for_function(card_shows("['OK']", 0), timeout=60_000)
            assert await card.locator(".value.lag-seconds").inner_text() == "0s"
            assert "1 member: fivecogs-inputs@" in await card.locator(".members").inner_text()
            await page.screenshot(path=str(ARTIFACTS / "ops-page.png"), full_page=True)
            await browser.close()
        assert errors == []
        assert requested
        assert all(url.startswith(f"http://127.0.0.1:{page_port}/") for url in requested)  # nothing from elsewhere
        assert all(operator_token() not in url for url in requested)  # the fragment never goes to the server
        assert authorizations == {f"Bearer {operator_token()}"}  # every data request carried it
    finally:
        services.stop_all()
        if page_server:
            stop_page(page_server)
        await drop_schema(stack_env.database_url, schema)


# The summary reloads itself every sample: a screenshot needs a page that stays for a moment. A held event within
# the hour counts as close to the end of its wait.
SLOW_REFRESH = ["--interval", "5", "--warn-held-expiry", "3600"]
# A consumer group may be called anything; the page must show this as text, never run it.
HOSTILE = '<script>alert("ops")</script>'


async def dead_letter_waiting(stack_env: Any, topic: str, hostile_group: str) -> None:
    """One record in a dead-letter topic of its own (nothing replayed it), and a caught-up group with a hostile
    name on it."""
    await kafka_admin.ensure_topics(stack_env.kafka, [kafka_admin.TopicSpec(topic, partitions=1)])
    producer = AIOKafkaProducer(**stack_env.kafka.client(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"ops-page", headers=[("fivecogs_error_kind", b"invalid")])
    finally:
        await producer.stop()
    await kafka_admin.reset_group_offsets(stack_env.kafka, hostile_group, {TopicPartition(topic, 0): 1})


async def rows_to_act_on(database_url: str, schema: str, tmp: Path) -> None:
    """In a fresh schema with the services' tables: an outbox row 10 minutes old (no relay reads this schema), a
    parked one, and a held event whose wait ends in 30 minutes."""
    pool = await db.create_pool(database_url, schema)
    try:
        await db.migrate(pool, schema, tmp)  # a folder without .sql files: the shared migrations only
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO outbox (topic, value, created_at) VALUES ('t', 'v', now() - interval '10 min')"
            )
            await conn.execute(
                "INSERT INTO outbox_parked (id, topic, value, created_at, xid, error) "
                "VALUES (1, 't', 'v', now(), pg_current_xact_id(), 'too large')"
            )
            await conn.execute(
                'INSERT INTO held (source, event_id, event_type, awaits, reason, detail, topic, "partition", '
                "\"offset\", value, expires_at) VALUES ('s', 'e1', 'x', 'enterprise:E1', 'rule:unknown_enterprise', "
                "'', 't', 0, 0, 'v', now() + interval '30 min')"
            )
    finally:
        await pool.close()


async def forget(stack_env: Any, topic: str) -> None:
    """Later pages must not count this test's dead letter (the group's name is this test's own: it may stay)."""
    async with kafka_admin.admin_client(stack_env.kafka) as admin:
        await admin.delete_topics([topic])


async def test_a_dead_letter_waiting_is_warn_on_the_page_and_on_the_summary_without_javascript(
    stack_env, tmp_path
) -> None:
    playwright = pytest.importorskip("playwright.async_api")
    browser_path = chromium()
    suffix = uuid.uuid4().hex[:8]
    prefix, topic = f"fivecogs-ops{suffix}-", f"fivecogs.inputs.ingest.opstest{suffix}.dlq"
    hostile_group = f"{prefix}{HOSTILE}"
    reason = f"1 dead letter waiting in {topic}"
    # inputs' tables in a schema of this test's own; the other services' in schemas nobody has, so no other
    # test's leftovers count.
    schema = f"opstest_{suffix}_inputs"
    env = {**stack_env.as_env(), **{f"FIVECOGS_{c.upper()}_DB_SCHEMA": f"opstest_{suffix}_none" for c in COGS}}
    env["FIVECOGS_INPUTS_DB_SCHEMA"] = schema
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    page_server = None
    try:
        await dead_letter_waiting(stack_env, topic, hostile_group)
        await rows_to_act_on(stack_env.database_url, schema, tmp_path)
        page_server = await asyncio.to_thread(start_page, prefix, env, tmp_path, port, *SLOW_REFRESH)
        async with httpx.AsyncClient(base_url=base, timeout=40) as client:
            refused = await client.get("/summary")
            data = (await client.get("/api/lag", headers={"Authorization": f"Bearer {operator_token()}"})).json()
        # Refused without a word about the system; a browser is asked for a user name and password.
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Basic realm="fivecogs ops"'
        assert all(secret not in refused.text for secret in (topic, prefix, "dead letter", operator_token()))
        # The JSON: the overall status and its reasons; per topic, waiting and total.
        assert data["overall"]["status"] == "WARN"
        [dead, parked, unsent, held] = [r for r in data["overall"]["reasons"] if topic in r or " inputs" in r]
        assert dead == reason
        assert parked == "1 outbox row parked in inputs (Kafka refused them)"
        assert re.fullmatch(r"1 outbox row unsent in inputs, the oldest 1\dm \d\ds old", unsent)
        assert re.fullmatch(
            r"1 held event in inputs \(unknown_enterprise\): the first one's wait ends in 2\dm \d\ds", held
        )
        assert {"topic": topic, "waiting": 1, "total": 1} in data["dlq"]
        assert [g["group"] for g in data["groups"]] == [hostile_group]

        async with playwright.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=browser_path, headless=True, args=CHROMIUM_FLAGS)
            dialogs: list[str] = []
            # Without JavaScript: the browser answers the Basic challenge with any user name and the token.
            plain = await browser.new_context(
                java_script_enabled=False,
                http_credentials={"username": "operator", "password": operator_token()},
                viewport={"width": 1200, "height": 700},
            )
            summary = await plain.new_page()
            summary.on("dialog", lambda dialog: dialogs.append(dialog.message))
            response = await summary.goto(f"{base}/summary")
            assert response is not None
            assert response.status == 200
            assert "script-src" not in response.headers["content-security-policy"]
            expect = playwright.expect
            await expect(summary.locator("#overall")).to_have_text("WARN", timeout=30_000)
            await expect(summary.locator("#reasons li", has_text=reason)).to_have_count(1)
            await expect(summary.locator("#reasons li", has_text=parked)).to_have_count(1)
            row = summary.locator("tr", has=summary.locator("td", has_text=topic.removeprefix("fivecogs.")))
            assert await row.locator("td").all_inner_texts() == [topic.removeprefix("fivecogs."), "1", "1"]
            # The hostile group is shown as its name, character for character.
            assert await summary.locator("td .mono", has_text=HOSTILE).inner_text() == hostile_group
            await summary.screenshot(path=str(ARTIFACTS / "ops-summary.png"), full_page=True)
            # The JavaScript page, with scripts off, says where to go instead.
            await summary.goto(f"{base}/")
            assert "open /summary" in " ".join((await summary.locator("noscript").inner_text()).split())
            await summary.screenshot(path=str(ARTIFACTS / "ops-page-noscript.png"))
            await summary.locator('noscript a[href="/summary"]').click()
            await expect(summary.locator("#overall")).to_have_text("WARN", timeout=30_000)

            # With JavaScript: the page shows the same overall status and reason, and the hostile name as text.
            scripted = await browser.new_context(viewport={"width": 1400, "height": 800})
            page = await scripted.new_page()
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            await page.goto(f"{base}/#token={operator_token()}")
            await expect(page.locator("#overall")).to_have_text("WARN", timeout=30_000)
            await expect(page.locator("#reason-list li", has_text=reason)).to_have_count(1)
            dlq = page.locator(f'#dlq tr[data-topic="{topic}"]')
            assert await dlq.locator("td").all_inner_texts() == [topic.removeprefix("fivecogs."), "1", "1"]
            assert await page.locator(".group h2").inner_text() == hostile_group
            await page.screenshot(path=str(ARTIFACTS / "ops-page-warn.png"), full_page=True)
            await browser.close()
        assert dialogs == []  # nothing the cluster named ran
    finally:
        if page_server:
            stop_page(page_server)
        await forget(stack_env, topic)
        await drop_schema(stack_env.database_url, schema)
