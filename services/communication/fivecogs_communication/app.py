"""Wiring of the communication service: what it consumes, its handlers, its schema; the rest is fivecogs_shared."""

from __future__ import annotations

from pathlib import Path

from fivecogs_communication import destinations, store, webhooks
from fivecogs_communication.handlers import handlers
from fivecogs_shared.contracts import UPSTREAM
from fivecogs_shared.service import ServiceDefinition
from fivecogs_shared.service import main as run_service


def definition(
    settings: webhooks.WebhookSettings | None = None, policy: destinations.DestinationPolicy | None = None
) -> ServiceDefinition:
    """The service. With `settings`, subscriptions and sends follow one destination policy: `policy`, else the one
    the settings make (e.g. loopback allowed in development). Without, subscriptions get the strict policy and the
    worker reads its settings when the service starts: a stricter check at subscription is never a way in."""
    shared = policy or (settings.destination_policy() if settings else None)
    return ServiceDefinition(
        cog="communication",
        handlers=handlers(shared or destinations.DestinationPolicy()),
        migrations=Path(__file__).parent / "migrations",
        upstream=UPSTREAM["communication"],
        background=(webhooks.worker(settings, shared),),
        state=store.CommunicationState,
    )


DEFINITION = definition()


def main() -> None:
    # Read here, before anything starts: a development signing key (or loopback webhooks) outside development
    # stops the service now.
    run_service(definition(webhooks.WebhookSettings()))
