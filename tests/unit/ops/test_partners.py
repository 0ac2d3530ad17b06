"""Provisioning rules that need no broker: partner ids, cogs, what each principal is granted."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fivecogs_ops import partners, principals
from fivecogs_ops.kafka_security import Acl
from fivecogs_shared.contracts import COGS


@pytest.mark.parametrize("partner", ["Otop", "otop.hub", "otop_hub", "", "-x", "a" * 64, "otop hub"])
def test_a_partner_id_that_could_reach_another_partners_names_is_refused(partner: str) -> None:
    with pytest.raises(partners.PartnerError, match="lowercase letters"):
        partners.checked(partner, ["inputs"])


def test_cogs_are_checked_and_kept_once() -> None:
    assert partners.checked("otop-hub", ["inputs", "marketing", "inputs"]) == ("otop-hub", ("inputs", "marketing"))
    with pytest.raises(partners.PartnerError, match="unknown cog"):
        partners.checked("otop-hub", ["weather"])


def test_a_partner_is_granted_its_own_topics_only() -> None:
    acls = principals.partner_acls("otop-hub", ["marketing"])
    own = {(a.name, a.operation) for a in acls if a.principal == "User:partner.otop-hub"}
    assert own == {
        ("fivecogs.marketing.ingest.otop-hub", "write"),
        ("fivecogs.marketing.ingest.otop-hub", "describe"),
        ("fivecogs.feedback.otop-hub", "read"),
        ("fivecogs.feedback.otop-hub", "describe"),
        ("partner.otop-hub.", "read"),
        ("partner.otop-hub.", "describe"),
    }
    assert all(a.pattern == "literal" for a in acls if a.resource == "topic")  # never a prefix over other names
    services = {(a.principal, a.name) for a in acls if a.principal != "User:partner.otop-hub"}
    assert services == {("User:service-marketing", "fivecogs.marketing.ingest.otop-hub.dlq")}


def test_no_principal_but_its_service_may_write_an_events_topic() -> None:
    writers = {
        (acl.principal, acl.name)
        for acl in principals.stack_acls()
        if acl.resource == "topic"
        and acl.operation == "write"
        and ".events" in acl.name
        and not acl.name.endswith(".dlq")
    }
    assert writers == {(f"User:service-{cog}", f"fivecogs.{cog}.events") for cog in COGS}


def test_acls_become_kafka_acls_lines_grouped_by_principal_resource_and_operations() -> None:
    acls = [
        Acl("User:a", "topic", "t1", "write"),
        Acl("User:a", "topic", "t2", "write"),
        Acl("User:a", "topic", "t1", "describe_configs"),
        Acl("User:a", "group", "g-", "read", "prefixed"),
    ]
    literal = "--allow-principal User:a --resource-pattern-type literal"
    assert principals.kafka_acls_arguments(acls) == [
        "--allow-principal User:a --resource-pattern-type prefixed --operation Read --group g-",
        f"{literal} --operation DescribeConfigs --operation Write --topic t1",
        f"{literal} --operation Write --topic t2",
    ]


async def test_concurrent_quieting_restores_aiokafkas_level() -> None:
    aiokafka_log = logging.getLogger("aiokafka")
    aiokafka_log.setLevel(logging.WARNING)

    async def quiet_for(seconds: float) -> int:
        with partners._aiokafka_quiet():
            await asyncio.sleep(seconds)
            return aiokafka_log.level

    try:
        levels = await asyncio.gather(quiet_for(0.05), quiet_for(0.01), quiet_for(0.03))
        assert list(levels) == [logging.CRITICAL] * 3
        assert aiokafka_log.level == logging.WARNING
    finally:
        aiokafka_log.setLevel(logging.NOTSET)
