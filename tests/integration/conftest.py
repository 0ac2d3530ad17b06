"""Fixtures that run a service in this process against the real stack, isolated by its own schema and group."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import asyncpg
import pytest

from fivecogs_shared import db, kafka_admin
from fivecogs_shared.contracts import partner_of_topic
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.service import Runtime, ServiceDefinition, running
from fivecogs_shared.settings import ServiceSettings, load_settings
from tests.support import PARTNER

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
        return _isolated(stack_env, definition, settings, prepared="consumer_group" in overrides)

    return start


@contextlib.asynccontextmanager
async def _isolated(
    stack_env, definition: ServiceDefinition, settings: ServiceSettings, prepared: bool
) -> AsyncIterator[Runtime]:
    """The service, with its new group past what other partners (the simulator's cast, other tests' partners)
    wrote before: it reads the test partner's topics and the upstream events from the start, as before per-partner
    topics, instead of every partner's whole history. A group the test prepared itself is left as it is."""
    if not prepared:
        await _past_other_partners(stack_env.kafka, settings.group_id, definition)
    async with running(definition, settings) as runtime:
        yield runtime


async def _past_other_partners(kafka: KafkaAccess, group: str, definition: ServiceDefinition) -> None:
    pattern = re.compile(definition.sources().pattern())
    async with kafka_admin.admin_client(kafka) as admin:
        topics = [t for t in await kafka_admin.list_topics(admin) if pattern.match(t)]
        others = [t for t in topics if partner_of_topic(t) not in (None, PARTNER)]
        partitions = await kafka_admin.partitions_of(admin, others)
    if partitions:
        await kafka_admin.reset_group_offsets(kafka, group, await kafka_admin.end_offsets(kafka, partitions))


@pytest.fixture
async def partner(test_partner) -> AsyncIterator[object]:
    """The test partner, publishing with its own credentials on its own topics."""
    from tests.support import Partner

    async with Partner(test_partner.access) as p:
        yield p


@pytest.fixture
async def schema_pool(stack_env, tmp_path) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A fresh schema with the shared migrations only (outbox, inbox, outbox_parked, held), dropped after."""
    schema = f"test_outbox_{uuid.uuid4().hex[:8]}"
    pool = await db.create_pool(stack_env.database_url, schema)
    await db.migrate(pool, schema, tmp_path)
    try:
        yield schema, pool
    finally:
        await pool.close()
        conn = await asyncpg.connect(stack_env.database_url)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()
