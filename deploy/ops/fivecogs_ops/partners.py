"""Provisioning partners: the credentials, topics and ACLs that make a partner's events its own.

`add` creates a SCRAM-SHA-512 user `partner.<id>`, the partner's ingest topics (with their dead-letter topics)
for the cogs it writes and its feedback topic, and the ACLs of `principals.partner_acls`. The password is
returned once and kept nowhere: `rotate` issues a new one, `remove` revokes the user and every ACL (the topics,
and the history on them, stay).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from fivecogs_ops import principals
from fivecogs_ops.kafka_security import (
    create_acls,
    delete_acls,
    delete_scram_user,
    describe_acls,
    scram_users,
    set_scram_password,
)
from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts import COGS, PARTNER_EVENT_TYPES
from fivecogs_shared.contracts.topics import PARTNER_ID, partner_of_topic
from fivecogs_shared.kafka_access import KafkaAccess

# The cogs partners write to: every cog that has partner event types.
PARTNER_COGS = tuple(cog for cog in COGS if any(t.cog == cog for t in PARTNER_EVENT_TYPES.values()))


CREDENTIAL_WAIT_SECONDS = 10.0


class PartnerError(ValueError):
    """A request the operator has to change (an unknown cog, a partner that does not exist); says which."""


@dataclass(frozen=True)
class PartnerAccess:
    """What a partner is given once: its principal's credentials, the topics it writes and the one it reads."""

    partner: str
    cogs: tuple[str, ...]
    access: KafkaAccess = field(repr=False)

    def client(self) -> dict[str, Any]:
        """Ready keyword arguments for aiokafka's producer and consumer (`--json`), without the SSL context."""
        found = {k: v for k, v in self.access.client().items() if k != "ssl_context"}
        if self.access.cafile:
            found["ssl_cafile"] = self.access.cafile
        return found

    def summary(self) -> dict[str, Any]:
        from fivecogs_shared.contracts import feedback_topic, ingest_topic

        return {
            "partner": self.partner,
            "ce_source": f"partner/{self.partner}",
            "writes": {cog: ingest_topic(cog, self.partner) for cog in self.cogs},
            "reads": feedback_topic(self.partner),
            "consumer_groups": f"{principals.partner_user(self.partner)}.*",
            "client": self.client(),
        }


@dataclass(frozen=True)
class PartnerListing:
    partner: str
    cogs: tuple[str, ...]
    has_credentials: bool


def checked(partner: str, cogs: Iterable[str] = ()) -> tuple[str, tuple[str, ...]]:
    if not PARTNER_ID.fullmatch(partner):
        raise PartnerError(f"partner id {partner!r}: lowercase letters, digits and dashes, 1 to 63 characters")
    wanted = tuple(dict.fromkeys(cogs))
    unknown = [cog for cog in wanted if cog not in PARTNER_COGS]
    if unknown:
        raise PartnerError(f"unknown cog(s) {', '.join(unknown)}; partners write to {', '.join(PARTNER_COGS)}")
    return partner, wanted


async def add(admin_access: KafkaAccess, partner: str, cogs: Sequence[str]) -> PartnerAccess:
    """Create (or extend, with more cogs) a partner and give it a new password."""
    partner, wanted = checked(partner, cogs)
    if not wanted:
        raise PartnerError("name at least one cog the partner writes to (--cogs)")
    try:
        partitions = kafka_admin.default_partitions()
    except ValueError as error:  # FIVECOGS_TOPIC_PARTITIONS: the operator's to fix
        raise PartnerError(str(error)) from None
    specs = [kafka_admin.TopicSpec(topic, partitions) for topic in principals.partner_topics(partner, wanted)]
    await kafka_admin.ensure_topics(admin_access, specs)
    async with kafka_admin.admin_client(admin_access) as admin:
        await create_acls(admin, principals.partner_acls(partner, wanted))
        password = await _new_password(admin, admin_access, partner)
    cogs_now = tuple(sorted(set(wanted) | set(await cogs_of(admin_access, partner))))
    return PartnerAccess(partner, cogs_now, admin_access.as_user(principals.partner_user(partner), password))


async def rotate(admin_access: KafkaAccess, partner: str) -> PartnerAccess:
    """A new password for an existing partner; the old one stops working at once."""
    partner, _ = checked(partner)
    cogs = await cogs_of(admin_access, partner)
    if not cogs:
        raise PartnerError(f"no partner {partner!r} (add it first)")
    async with kafka_admin.admin_client(admin_access) as admin:
        password = await _new_password(admin, admin_access, partner)
    return PartnerAccess(partner, cogs, admin_access.as_user(principals.partner_user(partner), password))


async def remove(admin_access: KafkaAccess, partner: str) -> int:
    """Revoke the partner's user and every ACL of its principal; returns how many ACLs went. Its topics stay, and
    so do the services' rights on them: what the partner sent before is still answered and dead-lettered."""
    partner, _ = checked(partner)
    cogs = await cogs_of(admin_access, partner)
    own = principals.user(principals.partner_user(partner))
    async with kafka_admin.admin_client(admin_access) as admin:
        theirs = [acl for acl in principals.partner_acls(partner, cogs or PARTNER_COGS) if acl.principal == own]
        deleted = await delete_acls(admin, theirs)
        await delete_scram_user(admin, principals.partner_user(partner))
    return len(deleted)


async def listing(admin_access: KafkaAccess) -> list[PartnerListing]:
    async with kafka_admin.admin_client(admin_access) as admin:
        acls = await describe_acls(admin, resource="topic")
        users = set(await scram_users(admin))
    cogs: dict[str, set[str]] = {}
    for acl in acls:
        partner = partner_of_topic(acl.name)
        if partner and acl.principal == principals.user(principals.partner_user(partner)):
            cogs.setdefault(partner, set()).add(acl.name.split(".")[1])
    return [PartnerListing(p, tuple(sorted(c)), principals.partner_user(p) in users) for p, c in sorted(cogs.items())]


async def cogs_of(admin_access: KafkaAccess, partner: str) -> tuple[str, ...]:
    async with kafka_admin.admin_client(admin_access) as admin:
        acls = await describe_acls(admin, principal=principals.user(principals.partner_user(partner)), resource="topic")
    return tuple(sorted({acl.name.split(".")[1] for acl in acls if partner_of_topic(acl.name) == partner}))


async def _new_password(admin: Any, admin_access: KafkaAccess, partner: str) -> str:
    """Set a fresh password, and return once the broker accepts it (the credential reaches it a moment later)."""
    password = secrets.token_urlsafe(32)
    await set_scram_password(admin, principals.partner_user(partner), password)
    access = admin_access.as_user(principals.partner_user(partner), password)
    deadline = time.monotonic() + CREDENTIAL_WAIT_SECONDS
    with _aiokafka_quiet():  # it logs every refusal while the credential is on its way
        while not await kafka_admin.broker_reachable(access, timeout=2.0):
            if time.monotonic() > deadline:
                raise PartnerError(f"the broker did not accept the new credentials of {partner!r} in time")
            await asyncio.sleep(0.2)
    return password


_quieted = {"callers": 0, "level": logging.NOTSET}


@contextlib.contextmanager
def _aiokafka_quiet() -> Iterator[None]:
    """aiokafka's log muted while any caller needs it: several partners are provisioned at once, and each saving
    and restoring the level on its own would leave it muted for good."""
    aiokafka_log = logging.getLogger("aiokafka")
    if not _quieted["callers"]:
        _quieted["level"] = aiokafka_log.level
        aiokafka_log.setLevel(logging.CRITICAL)
    _quieted["callers"] += 1
    try:
        yield
    finally:
        _quieted["callers"] -= 1
        if not _quieted["callers"]:
            aiokafka_log.setLevel(_quieted["level"])
