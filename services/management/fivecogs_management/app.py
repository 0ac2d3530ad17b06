"""Wiring of the management service: what it consumes, its handlers, its schema, its HTTP API; the rest is
fivecogs_shared."""

from __future__ import annotations

from pathlib import Path

from fivecogs_management import api, store
from fivecogs_management.handlers import HANDLERS
from fivecogs_shared.contracts import UPSTREAM
from fivecogs_shared.service import ServiceDefinition
from fivecogs_shared.service import main as run_service

DEFINITION = ServiceDefinition(
    cog="management",
    handlers=HANDLERS,
    migrations=Path(__file__).parent / "migrations",
    upstream=UPSTREAM["management"],
    routes=api.routes,
    state=store.ManagementState,
)


def main() -> None:
    run_service(DEFINITION)
