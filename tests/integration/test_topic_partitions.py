"""A topic created under FIVECOGS_TOPIC_PARTITIONS has that many partitions (real broker)."""

from __future__ import annotations

import uuid

import pytest

from fivecogs_shared import kafka_admin

pytestmark = pytest.mark.integration


async def test_a_topic_created_with_the_setting_has_that_count(stack_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kafka_admin.TOPIC_PARTITIONS_ENV, "5")
    name = f"test-partitions-{uuid.uuid4().hex[:8]}"
    await kafka_admin.ensure_topics(stack_env.kafka, [kafka_admin.TopicSpec(name)])
    try:
        assert len(await kafka_admin.topic_partitions(stack_env.kafka, name)) == 5
    finally:
        async with kafka_admin.admin_client(stack_env.kafka) as admin:
            await admin.delete_topics([name])
