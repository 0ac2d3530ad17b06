"""Handlers of the management service: record the facts of the chain, distribute each settlement's margin."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from fivecogs_management import domain, journey, store
from fivecogs_management.journey import At
from fivecogs_management.store import ManagementState
from fivecogs_shared.consumer import Handler
from fivecogs_shared.contracts import internal, internal_type, partner
from fivecogs_shared.envelope import CORRELATION_HEADER, Envelope
from fivecogs_shared.uow import UnitOfWork

DISTRIBUTION_MADE = internal_type("management", "distribution.made")
EVER = datetime.min.replace(tzinfo=UTC)


def _state(uow: UnitOfWork) -> ManagementState:
    assert isinstance(uow.state, ManagementState), "the management service runs with its ManagementState"
    return uow.state


def _at(event: Envelope) -> At:
    """The step of an event, with the partner event that started it (its correlation id)."""
    return At(event.id, event.time, event.correlation_id)


async def on_policy_set(uow: UnitOfWork, event: Envelope) -> None:
    """A policy takes effect at its ce_time. Settlements already distributed from then on (the policy arrived
    late) are distributed again by it, so the report never depends on which topic was read first."""
    command, state = event.data_as(partner.DistributionPolicySet), _state(uow)
    await state.flush()  # what the batch recorded so far, for the SQL below to see and redistribute
    await store.save_policy(uow.conn, command.province, domain.policy_of(command), event.time, event.id)
    state.forget_policies(command.province)
    for settled in await store.settlements_since(uow.conn, command.province, event.time):
        policy, effective_at = await _policy_at(uow, command.province, settled.settled_at)
        distribution = domain.distribute(settled.revenue_thb, settled.cost_thb, policy)
        if distribution is not None:
            await store.redistribute(uow.conn, settled.settlement_id, distribution, effective_at)


async def _policy_at(uow: UnitOfWork, province: str, moment: datetime) -> tuple[domain.Policy, datetime]:
    """The policy in force at a moment, and since when; the programme default has been in force forever."""
    found = await _state(uow).policy_at(province, moment)
    return found if found is not None else (domain.policy_in_force(None), EVER)


async def on_enterprise_registered(uow: UnitOfWork, event: Envelope) -> None:
    _state(uow).save_enterprise(event.data_as(internal.EnterpriseRegistered))


async def on_input_delivered(uow: UnitOfWork, event: Envelope) -> None:
    _state(uow).save_steps([journey.delivered(_at(event), event.data_as(internal.InputDelivered))])


async def on_batch_produced(uow: UnitOfWork, event: Envelope) -> None:
    batch, state = event.data_as(internal.BatchProduced), _state(uow)
    state.save_batch(batch.batch_id, batch.product_id)
    state.save_steps([journey.produced(_at(event), batch)])


async def on_batch_assessed(uow: UnitOfWork, event: Envelope) -> None:
    batch, state = event.data_as(internal.BatchAssessed), _state(uow)
    # Knowledge's topic may be read before inputs': the assessment also tells which product the batch made.
    state.save_batch(batch.batch_id, batch.product_id)
    state.save_steps([journey.assessed(_at(event), batch)])


async def on_certification_accepted(uow: UnitOfWork, event: Envelope) -> None:
    certificate = event.data_as(internal.CertificationAccepted)
    _state(uow).save_steps([journey.certified(_at(event), certificate)])


async def on_listing_accepted(uow: UnitOfWork, event: Envelope) -> None:
    _state(uow).save_steps([journey.listed(_at(event), event.data_as(internal.ListingAccepted))])


async def on_order_accepted(uow: UnitOfWork, event: Envelope) -> None:
    order, state = event.data_as(internal.OrderAccepted), _state(uow)
    state.save_order_lines(order)
    state.save_steps(journey.ordered(_at(event), order))


async def on_order_cancelled(uow: UnitOfWork, event: Envelope) -> None:
    cancel, state = event.data_as(internal.OrderCancelled), _state(uow)
    lines = await state.order_lines(cancel.order_id)
    state.save_steps(journey.cancelled(_at(event), cancel, lines))


async def on_settlement_recorded(uow: UnitOfWork, event: Envelope) -> None:
    settlement, state = event.data_as(internal.SettlementRecorded), _state(uow)
    if not await state.record_settlement(settlement, event.id):
        return  # the same settlement replayed under another event id: counted and distributed already
    margin = domain.margin_of(settlement.revenue_thb, settlement.cost_thb)
    state.save_steps(journey.settled(_at(event), settlement, margin))
    policy, effective_at = await _policy_at(uow, settlement.province, settlement.settled_at)
    distribution = domain.distribute(settlement.revenue_thb, settlement.cost_thb, policy)
    if distribution is not None:
        await _distribute(uow, settlement, distribution, effective_at)


async def _distribute(
    uow: UnitOfWork, settlement: internal.SettlementRecorded, d: domain.Distribution, effective_at: datetime
) -> None:
    made = internal.DistributionMade(
        distribution_id=settlement.settlement_id,
        settlement_id=settlement.settlement_id,
        enterprise_id=settlement.enterprise_id,
        province=settlement.province,
        margin_thb=d.margin_thb,
        members_thb=d.members_thb,
        community_fund_thb=d.community_fund_thb,
        reinvest_thb=d.reinvest_thb,
        members_share=d.policy.members_share,
        community_fund_share=d.policy.community_fund_share,
        reinvest_share=d.policy.reinvest_share,
        product_ids=settlement.product_ids,
    )
    event_id, state = uow.emit(DISTRIBUTION_MADE, made, key=settlement.enterprise_id), _state(uow)
    state.save_distribution(settlement, d, event_id, effective_at)
    state.save_steps(journey.distributed(_emitted(uow, event_id), made))


def _emitted(uow: UnitOfWork, event_id: str) -> At:
    """The step of an event this service emitted, as its readers see it: its ce_time and ce_correlationid."""
    for record in reversed(uow.outgoing):
        headers = dict(record.headers)
        if headers.get("ce_id") == event_id.encode():
            moment = datetime.fromisoformat(headers["ce_time"].decode())
            return At(event_id, moment, headers[CORRELATION_HEADER].decode())
    raise LookupError(f"event {event_id} was not emitted in this unit of work")


async def on_notice_published(uow: UnitOfWork, event: Envelope) -> None:
    notice, state = event.data_as(internal.NoticePublished), _state(uow)
    if await state.record_notice(notice, event.id):
        state.save_steps(journey.noticed(_at(event), notice))


HANDLERS: Mapping[str, Handler] = {
    "th.fivecogs.distribution.policy.set.v1": on_policy_set,
    internal_type("inputs", "enterprise.registered"): on_enterprise_registered,
    internal_type("inputs", "input.delivered"): on_input_delivered,
    internal_type("inputs", "batch.produced"): on_batch_produced,
    internal_type("knowledge", "batch.assessed"): on_batch_assessed,
    internal_type("knowledge", "certification.accepted"): on_certification_accepted,
    internal_type("marketing", "listing.accepted"): on_listing_accepted,
    internal_type("marketing", "order.accepted"): on_order_accepted,
    internal_type("marketing", "order.cancelled"): on_order_cancelled,
    internal_type("marketing", "settlement.recorded"): on_settlement_recorded,
    internal_type("communication", "notice.published"): on_notice_published,
}
