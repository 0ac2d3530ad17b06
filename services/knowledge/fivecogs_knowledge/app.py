"""Wiring of the knowledge service: what it consumes, its handlers, its schema; the rest is fivecogs_shared."""

from __future__ import annotations

from pathlib import Path

from fivecogs_knowledge import store
from fivecogs_knowledge.handlers import HANDLERS
from fivecogs_shared.contracts import UPSTREAM
from fivecogs_shared.service import ServiceDefinition
from fivecogs_shared.service import main as run_service

DEFINITION = ServiceDefinition(
    cog="knowledge",
    handlers=HANDLERS,
    migrations=Path(__file__).parent / "migrations",
    upstream=UPSTREAM["knowledge"],
    state=store.KnowledgeState,
)


def main() -> None:
    run_service(DEFINITION)
