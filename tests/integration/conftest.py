"""Fixtures that run a service in this process against the real stack, isolated by its own schema and group."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from fivecogs_shared.service import Runtime, ServiceDefinition, running
from fivecogs_shared.settings import load_settings

RunService = Callable[..., AbstractAsyncContextManager[Runtime]]


@pytest.fixture(autouse=True, scope="session")
def _test_partner_exists(test_partner) -> None:
    """Every test here may publish on the test partner's topics (tests.support.ingest): they exist first."""


@pytest.fixture
def run_service(stack_env) -> RunService:
    """Start a service with a fresh schema and consumer group, so each test sees only its own state."""

    def start(definition: ServiceDefinition, **overrides: object) -> AbstractAsyncContextManager[Runtime]:
        """`overrides` are settings, e.g. `consumer_group=` to prepare the group before the service starts."""
        suffix = uuid.uuid4().hex[:8]
        fresh: dict[str, object] = {
            "db_schema": f"test_{definition.cog}_{suffix}",
            # Within the service principal's groups (`fivecogs-<cog>*`): the test runs it as that principal.
            "consumer_group": f"fivecogs-{definition.cog}-test-{suffix}",
            "relay_poll_seconds": 0.2,
        }
        settings = load_settings(definition.cog, **stack_env.service_settings(definition.cog) | fresh | overrides)
        return running(definition, settings)

    return start


@pytest.fixture
async def partner(test_partner) -> AsyncIterator[object]:
    """The test partner, publishing with its own credentials on its own topics."""
    from tests.support import Partner

    async with Partner(test_partner.access) as p:
        yield p
