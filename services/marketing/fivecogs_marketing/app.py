"""Wiring of the marketing service: what it consumes, its handlers, its schema; the rest is fivecogs_shared."""

from __future__ import annotations

from pathlib import Path

from fivecogs_marketing import store
from fivecogs_marketing.handlers import HANDLERS
from fivecogs_shared.contracts import UPSTREAM
from fivecogs_shared.service import ServiceDefinition
from fivecogs_shared.service import main as run_service

DEFINITION = ServiceDefinition(
    cog="marketing",
    handlers=HANDLERS,
    migrations=Path(__file__).parent / "migrations",
    upstream=UPSTREAM["marketing"],
    state=store.MarketingState,
)


def main() -> None:
    run_service(DEFINITION)
