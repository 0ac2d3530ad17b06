"""Handlers of the communication service: keep subscribers, and turn chain events into notices (published on
Kafka and, for subscribers with a webhook, queued for the delivery worker in the same transaction)."""

from __future__ import annotations

from collections.abc import Mapping

from fivecogs_communication import domain, store
from fivecogs_shared.consumer import Handler
from fivecogs_shared.contracts import internal, internal_type, partner
from fivecogs_shared.envelope import Envelope, dump
from fivecogs_shared.uow import UnitOfWork

NOTICE_PUBLISHED = internal_type("communication", "notice.published")


async def on_subscription_created(uow: UnitOfWork, event: Envelope) -> None:
    await store.save_subscriber(uow.conn, domain.subscribe(event.data_as(partner.SubscriptionCreated)))


async def on_certification_accepted(uow: UnitOfWork, event: Envelope) -> None:
    await publish(uow, domain.certification(event.id, event.data_as(internal.CertificationAccepted)))


async def on_listing_accepted(uow: UnitOfWork, event: Envelope) -> None:
    await publish(uow, domain.listing(event.id, event.data_as(internal.ListingAccepted)))


async def on_settlement_recorded(uow: UnitOfWork, event: Envelope) -> None:
    await publish(uow, domain.sale(event.id, event.data_as(internal.SettlementRecorded)))


async def on_distribution_made(uow: UnitOfWork, event: Envelope) -> None:
    await publish(uow, domain.distribution(event.id, event.data_as(internal.DistributionMade)))


async def publish(uow: UnitOfWork, subject: domain.Subject) -> None:
    subscribers = await store.subscribers_for(uow.conn, subject.topic, subject.province)
    fresh = await store.save_new_notices(uow.conn, domain.notices_for(subscribers, subject))
    webhooks: list[tuple[domain.Notice, bytes]] = []
    for notice in fresh:
        published = _published(notice)
        uow.emit(NOTICE_PUBLISHED, published, key=notice.subscriber_id)
        if notice.webhook_url:
            webhooks.append((notice, dump(published)))  # the webhook body is the event's data, byte for byte
    await store.queue_webhooks(uow.conn, webhooks)


def _published(n: domain.Notice) -> internal.NoticePublished:
    return internal.NoticePublished(
        notice_id=n.notice_id,
        subscriber_id=n.subscriber_id,
        network=n.network,
        topic=n.topic,
        province=n.province,
        subject_id=n.subject_id,
        subject_event_id=n.subject_event_id,
        product_ids=list(n.product_ids),
        summary=n.summary,
    )


HANDLERS: Mapping[str, Handler] = {
    "th.fivecogs.subscription.created.v1": on_subscription_created,
    internal_type("knowledge", "certification.accepted"): on_certification_accepted,
    internal_type("marketing", "listing.accepted"): on_listing_accepted,
    internal_type("marketing", "settlement.recorded"): on_settlement_recorded,
    internal_type("management", "distribution.made"): on_distribution_made,
}
