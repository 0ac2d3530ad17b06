"""Wiring of the communication service: what it consumes, its handlers, its schema; the rest is fivecogs_shared."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fivecogs_communication import webhooks
from fivecogs_communication.handlers import HANDLERS
from fivecogs_shared.contracts import UPSTREAM
from fivecogs_shared.service import ServiceDefinition
from fivecogs_shared.service import main as run_service

DEFINITION = ServiceDefinition(
    cog="communication",
    handlers=HANDLERS,
    migrations=Path(__file__).parent / "migrations",
    upstream=UPSTREAM["communication"],
    background=(webhooks.worker(),),
)


def main() -> None:
    # Read here, before anything starts: a development signing key outside development stops the service now.
    settings = webhooks.WebhookSettings()
    run_service(replace(DEFINITION, background=(webhooks.worker(settings),)))
