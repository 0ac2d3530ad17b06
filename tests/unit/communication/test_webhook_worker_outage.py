"""The webhook worker while its database is away: it waits longer and longer, and says so once, not a
traceback every half second."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import asyncpg
from structlog.testing import capture_logs

from fivecogs_communication import webhooks


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_outage_is_logged_once_and_rounds_back_off(monkeypatch) -> None:
    # A real pool pointed at a port nobody listens on: every round fails to connect, as when Postgres is down.
    pool = await asyncpg.create_pool(f"postgresql://x@127.0.0.1:{_closed_port()}/x", min_size=0)
    settings = webhooks.WebhookSettings(poll_seconds=0.05)
    rounds = 0
    deliver_due = webhooks.deliver_due

    async def counted(*args: object) -> int:
        nonlocal rounds
        rounds += 1
        return await deliver_due(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(webhooks, "deliver_due", counted)
    try:
        with capture_logs() as logs:
            task = asyncio.create_task(webhooks.run(pool, settings))
            await asyncio.sleep(2.0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await pool.close()

    failures = [entry for entry in logs if "webhook round failed" in entry["event"]]
    assert [entry["log_level"] for entry in failures] == ["warning"]
    assert "ConnectionRefusedError" in failures[0]["error"] or "OSError" in failures[0]["error"]
    # 0.05, 0.1, 0.2, 0.4, 0.8 s ...: about six rounds in two seconds where a fixed pause would make forty
    assert 3 <= rounds <= 8
