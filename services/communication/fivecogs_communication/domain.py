"""Communication: partner networks subscribe to topics (and provinces) and receive a notice for each matching
event of the chain. Pure rules; no I/O."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from fivecogs_shared.contracts import internal, partner
from fivecogs_shared.contracts.topics import source_partner
from fivecogs_shared.errors import RuleViolation

# Notice ids derive from (subscriber, subject event): the same event processed again names the same notices.
_NOTICE_NAMESPACE = uuid.UUID("0b7e3c1a-2f47-4c1e-8e55-6a1d9c4f2b10")


@dataclass(frozen=True)
class Subscriber:
    subscriber_id: str
    network: partner.Network
    provinces: tuple[str, ...]  # empty: every province
    topics: tuple[partner.NoticeTopic, ...]
    webhook_url: str | None = None
    # The partner that created it (`owner_of` its ce_source); None for one stored before owners were recorded.
    owner: str | None = None

    def wants(self, subject: Subject) -> bool:
        in_province = not self.provinces or subject.province in self.provinces
        return subject.topic in self.topics and in_province


@dataclass(frozen=True)
class Subject:
    """What a notice is about: one upstream event, in the words subscribers read."""

    topic: partner.NoticeTopic
    subject_id: str
    event_id: str
    province: str
    product_ids: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class Notice:
    notice_id: str
    subscriber_id: str
    network: partner.Network
    topic: partner.NoticeTopic
    province: str
    subject_id: str
    subject_event_id: str
    product_ids: tuple[str, ...]
    summary: str
    webhook_url: str | None  # where it is also POSTed, if the subscriber asked for it


def owner_of(source: str) -> str:
    """Who a subscription belongs to: the partner its ce_source names (`partner/<id>` or `partner/<id>/...`, so
    every desk of a partner shares its subscriptions), else the whole ce_source."""
    return source_partner(source) or source


def subscribe(command: partner.SubscriptionCreated, owner: str, existing: Subscriber | None) -> Subscriber:
    """A subscription replaces whatever the subscriber had before, the latest one winning, but only its owner
    may replace it: another partner reusing the id would otherwise redirect its notices (`subscription_owned`).
    The webhook URL's destination is checked before this, with I/O (destinations.py)."""
    if existing is not None and existing.owner is None:
        raise RuleViolation(
            "subscription_owned",
            f"subscriber id {command.subscriber_id} was created before fivecogs recorded owners: "
            "ask the operators to confirm you as its owner",
        )
    if existing is not None and existing.owner != owner:
        raise RuleViolation("subscription_owned", f"subscriber id {command.subscriber_id} belongs to another partner")
    return Subscriber(
        subscriber_id=command.subscriber_id,
        network=command.network,
        provinces=tuple(command.provinces),
        topics=tuple(command.topics),
        webhook_url=str(command.webhook_url) if command.webhook_url else None,
        owner=owner,
    )


def notice_id(subscriber_id: str, subject_event_id: str) -> str:
    # JSON, not "a|b": ids may contain any character, and two different pairs must never read alike.
    return str(uuid.uuid5(_NOTICE_NAMESPACE, json.dumps([subscriber_id, subject_event_id])))


def notices_for(subscribers: Iterable[Subscriber], subject: Subject) -> list[Notice]:
    """One notice per matching subscriber, in subscriber id order (so emitted event ids are reproducible)."""
    unique = {s.subscriber_id: s for s in subscribers}
    return [_notice(unique[sid], subject) for sid in sorted(unique) if unique[sid].wants(subject)]


def _notice(subscriber: Subscriber, subject: Subject) -> Notice:
    return Notice(
        notice_id=notice_id(subscriber.subscriber_id, subject.event_id),
        subscriber_id=subscriber.subscriber_id,
        network=subscriber.network,
        topic=subject.topic,
        province=subject.province,
        subject_id=subject.subject_id,
        subject_event_id=subject.event_id,
        product_ids=subject.product_ids,
        summary=subject.summary,
        webhook_url=subscriber.webhook_url,
    )


# --- the events notices are about --------------------------------------------------------------------------


def certification(event_id: str, c: internal.CertificationAccepted) -> Subject:
    grade = f" {c.level} stars" if c.level is not None else ""
    summary = (
        f"Product {c.product_id} of {c.enterprise_id} ({c.province}) is certified {c.scheme}{grade}, "
        f"valid {c.valid_from} to {c.valid_until}."
    )
    return Subject("certification", c.certificate_id, event_id, c.province, (c.product_id,), summary)


def listing(event_id: str, li: internal.ListingAccepted) -> Subject:
    summary = (
        f"{li.enterprise_id} ({li.province}) lists product {li.product_id} on {li.channel} at {li.unit_price_thb} THB."
    )
    return Subject("listing", li.listing_id, event_id, li.province, (li.product_id,), summary)


def sale(event_id: str, s: internal.SettlementRecorded) -> Subject:
    summary = (
        f"{s.enterprise_id} ({s.province}) sold {_products(s.product_ids)} for {s.revenue_thb} THB "
        f"in order {s.order_id}."
    )
    return Subject("sale", s.settlement_id, event_id, s.province, tuple(s.product_ids), summary)


def distribution(event_id: str, d: internal.DistributionMade) -> Subject:
    summary = (
        f"{d.enterprise_id} ({d.province}) shared a margin of {d.margin_thb} THB: members {d.members_thb}, "
        f"community fund {d.community_fund_thb}, reinvestment {d.reinvest_thb}."
    )
    return Subject("distribution", d.distribution_id, event_id, d.province, tuple(d.product_ids), summary)


def _products(product_ids: list[str]) -> str:
    # The ids themselves travel in product_ids; a summary of a 100-line order must stay short.
    return f"product {product_ids[0]}" if len(product_ids) == 1 else f"{len(product_ids)} products"
