"""Handlers of the communication service: keep subscribers, and turn chain events into notices (published on
Kafka and, for subscribers with a webhook, queued for the delivery worker in the same transaction)."""

from __future__ import annotations

from collections.abc import Mapping

from fivecogs_communication import destinations, domain
from fivecogs_communication.store import CommunicationState
from fivecogs_shared.consumer import Handler
from fivecogs_shared.contracts import internal, internal_type, partner
from fivecogs_shared.envelope import Envelope, dump
from fivecogs_shared.errors import RuleViolation
from fivecogs_shared.uow import UnitOfWork

NOTICE_PUBLISHED = internal_type("communication", "notice.published")


def _state(uow: UnitOfWork) -> CommunicationState:
    assert isinstance(uow.state, CommunicationState), "the communication service runs with its CommunicationState"
    return uow.state


def subscription_handler(policy: destinations.DestinationPolicy) -> Handler:
    """`subscription.created`, with the destination policy the service runs with (app.py builds it from the
    webhook settings, so subscriptions and sends follow the same one)."""

    async def on_subscription_created(uow: UnitOfWork, event: Envelope) -> None:
        command, state = event.data_as(partner.SubscriptionCreated), _state(uow)
        existing = await state.subscriber(command.subscriber_id)
        # Ownership first: a takeover attempt is refused without resolving anything it names.
        subscriber = domain.subscribe(command, domain.owner_of(event.source), existing)
        if subscriber.webhook_url is not None:
            await check_destination(policy, subscriber.webhook_url)
        state.save_subscriber(subscriber)

    return on_subscription_created


async def check_destination(policy: destinations.DestinationPolicy, url: str) -> None:
    """Refuse the subscription (`rule:webhook_destination`) unless every address of its URL's host is allowed.
    A name that does not resolve is refused too: nothing could be checked, and a subscription must not wait on
    DNS while it holds its partition; the partner sends it again once the name resolves."""
    try:
        await policy.check(url)
    except destinations.Unresolved as unresolved:
        raise RuleViolation(destinations.RULE, unresolved.detail) from None


async def on_certification_accepted(uow: UnitOfWork, event: Envelope) -> None:
    await publish(uow, domain.certification(event.id, event.data_as(internal.CertificationAccepted)))


async def on_listing_accepted(uow: UnitOfWork, event: Envelope) -> None:
    await publish(uow, domain.listing(event.id, event.data_as(internal.ListingAccepted)))


async def on_settlement_recorded(uow: UnitOfWork, event: Envelope) -> None:
    await publish(uow, domain.sale(event.id, event.data_as(internal.SettlementRecorded)))


async def on_distribution_made(uow: UnitOfWork, event: Envelope) -> None:
    await publish(uow, domain.distribution(event.id, event.data_as(internal.DistributionMade)))


async def publish(uow: UnitOfWork, subject: domain.Subject) -> None:
    state = _state(uow)
    subscribers = await state.subscribers_for(subject.topic, subject.province)
    fresh = await state.save_new_notices(domain.notices_for(subscribers, subject))
    webhooks: list[tuple[domain.Notice, bytes]] = []
    for notice in fresh:
        published = _published(notice)
        uow.emit(NOTICE_PUBLISHED, published, key=notice.subscriber_id)
        if notice.webhook_url:
            webhooks.append((notice, dump(published)))  # the webhook body is the event's data, byte for byte
    state.queue_webhooks(webhooks)


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


def handlers(policy: destinations.DestinationPolicy) -> Mapping[str, Handler]:
    return {
        "th.fivecogs.subscription.created.v1": subscription_handler(policy),
        internal_type("knowledge", "certification.accepted"): on_certification_accepted,
        internal_type("marketing", "listing.accepted"): on_listing_accepted,
        internal_type("marketing", "settlement.recorded"): on_settlement_recorded,
        internal_type("management", "distribution.made"): on_distribution_made,
    }


# The strict policy: every webhook destination must be public.
HANDLERS: Mapping[str, Handler] = handlers(destinations.DestinationPolicy())
