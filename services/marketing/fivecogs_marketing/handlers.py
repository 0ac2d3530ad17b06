"""Handlers of the marketing service: decode, apply the domain in the unit of work, emit."""

from __future__ import annotations

from collections.abc import Mapping

from fivecogs_marketing.domain import listing as listings
from fivecogs_marketing.domain import orders, stock
from fivecogs_marketing.store import MarketingState
from fivecogs_shared.consumer import Handler
from fivecogs_shared.contracts import feedback, internal, internal_type, partner
from fivecogs_shared.envelope import Envelope
from fivecogs_shared.errors import RuleViolation
from fivecogs_shared.uow import UnitOfWork

LISTING_ACCEPTED = internal_type("marketing", "listing.accepted")
ORDER_ACCEPTED = internal_type("marketing", "order.accepted")
ORDER_REJECTED = internal_type("marketing", "order.rejected")
ORDER_CANCELLED = internal_type("marketing", "order.cancelled")
SETTLEMENT_RECORDED = internal_type("marketing", "settlement.recorded")


def _state(uow: UnitOfWork) -> MarketingState:
    assert isinstance(uow.state, MarketingState), "the marketing service runs with its MarketingState"
    return uow.state


# --- learnt from upstream ---------------------------------------------------------------------------------


async def on_enterprise_registered(uow: UnitOfWork, event: Envelope) -> None:
    e = event.data_as(internal.EnterpriseRegistered)
    _state(uow).save_enterprise(listings.Enterprise(e.enterprise_id, e.province, e.sector))
    uow.known(listings.enterprise_ref(e.enterprise_id))


async def on_batch_assessed(uow: UnitOfWork, event: Envelope) -> None:
    b = event.data_as(internal.BatchAssessed)
    batch = stock.Batch(
        b.batch_id,
        b.product_id,
        b.enterprise_id,
        b.province,
        b.quantity,
        b.produced_on,
        b.cost_thb,
        b.non_local_cost_thb,
    )
    await _state(uow).add_batch(batch)
    uow.known(listings.product_ref(b.enterprise_id, b.product_id), orders.stock_ref(b.product_id))


async def on_certification_accepted(uow: UnitOfWork, event: Envelope) -> None:
    c = event.data_as(internal.CertificationAccepted)
    certification = listings.Certification(
        c.certificate_id, c.product_id, c.scheme, c.level, c.valid_from, c.valid_until
    )
    await _state(uow).add_certification(certification, c.enterprise_id)
    uow.known(listings.certification_ref(c.product_id))


# --- partners ---------------------------------------------------------------------------------------------


async def on_listing_requested(uow: UnitOfWork, event: Envelope) -> None:
    command, state = event.data_as(partner.ListingRequested), _state(uow)
    listing = listings.accept_listing(
        await state.enterprise(command.enterprise_id),
        await state.makes_product(command.enterprise_id, command.product_id),
        await state.certifications(command.product_id),
        command,
        listed_at=event.time,
    )
    state.save_listing(listing)
    uow.known(listings.listing_ref(listing.channel, listing.product_id))
    uow.emit(
        LISTING_ACCEPTED,
        internal.ListingAccepted(
            listing_id=listing.listing_id,
            product_id=listing.product_id,
            enterprise_id=listing.enterprise_id,
            province=listing.province,
            channel=listing.channel,
            unit_price_thb=listing.unit_price_thb,
            listed_at=listing.listed_at,
        ),
        key=listing.product_id,
    )


async def on_order_placed(uow: UnitOfWork, event: Envelope) -> None:
    command, state = event.data_as(partner.OrderPlaced), _state(uow)
    products = [line.product_id for line in command.lines]
    try:
        order, taken = orders.place_order(
            await state.order(command.order_id) is not None,
            command,
            await state.listings(command.channel, products),
            await state.stock(products),
        )
    except RuleViolation as violation:
        if uow.waits(violation):
            raise  # held, not rejected: the listing or the stock it names may be on its way
        _reject_order(uow, command, violation)
        return
    state.save_stock(taken)
    state.save_order(order)
    uow.known(orders.order_ref(order.order_id))
    uow.emit(ORDER_ACCEPTED, _accepted(order), key=order.order_id)
    uow.tell_partner(
        feedback.ORDER_ACCEPTED_TYPE,
        feedback.PartnerOrderAccepted(order_id=order.order_id, buyer_id=order.buyer_id, total_thb=order.total_thb),
    )


def _reject_order(uow: UnitOfWork, command: partner.OrderPlaced, violation: RuleViolation) -> None:
    """An order rejection is news for the chain and for the buyer, so it is published, not rolled back; the
    runtime still answers the event with the usual `partner.event.rejected`."""
    uow.emit(
        ORDER_REJECTED,
        internal.OrderRejected(
            order_id=command.order_id, buyer_id=command.buyer_id, reason=violation.reason, detail=violation.detail
        ),
        key=command.order_id,
    )
    uow.tell_partner(
        feedback.ORDER_REJECTED_TYPE,
        feedback.PartnerOrderRejected(
            order_id=command.order_id, buyer_id=command.buyer_id, reason=violation.reason, detail=violation.detail
        ),
    )
    uow.reject(violation)


def _accepted(order: orders.Order) -> internal.OrderAccepted:
    return internal.OrderAccepted(
        order_id=order.order_id,
        buyer_id=order.buyer_id,
        channel=order.channel,
        placed_at=order.placed_at,
        total_thb=order.total_thb,
        lines=[
            internal.AcceptedLine(
                product_id=line.product_id,
                enterprise_id=line.enterprise_id,
                quantity=line.quantity,
                unit_price_thb=line.unit_price_thb,
                portions=[
                    internal.StockPortion(
                        batch_id=p.batch_id,
                        quantity=p.quantity,
                        cost_thb=p.cost_thb,
                        non_local_cost_thb=p.non_local_cost_thb,
                    )
                    for p in line.portions
                ],
            )
            for line in order.lines
        ],
    )


async def on_order_cancelled(uow: UnitOfWork, event: Envelope) -> None:
    command, state = event.data_as(partner.OrderCancelled), _state(uow)
    order = orders.cancel(await state.order(command.order_id), command)
    held = await state.batches(p.batch_id for p in order.portions)
    state.save_stock(stock.give_back(held, order.portions))
    state.save_order(order)
    uow.emit(
        ORDER_CANCELLED, internal.OrderCancelled(order_id=order.order_id, reason=command.reason), key=order.order_id
    )


async def on_payment_received(uow: UnitOfWork, event: Envelope) -> None:
    command, state = event.data_as(partner.PaymentReceived), _state(uow)
    order, settlements = orders.pay(await state.order(command.order_id), command, paid_at=event.time)
    state.save_order(order)
    state.add_settlements(settlements)
    for s in settlements:
        uow.emit(
            SETTLEMENT_RECORDED,
            internal.SettlementRecorded(
                settlement_id=s.settlement_id,
                order_id=s.order_id,
                payment_id=s.payment_id,
                enterprise_id=s.enterprise_id,
                province=s.province,
                revenue_thb=s.revenue_thb,
                cost_thb=s.cost_thb,
                non_local_cost_thb=s.non_local_cost_thb,
                product_ids=list(s.product_ids),
                settled_at=s.settled_at,
            ),
            key=s.enterprise_id,
        )


HANDLERS: Mapping[str, Handler] = {
    internal_type("inputs", "enterprise.registered"): on_enterprise_registered,
    internal_type("knowledge", "batch.assessed"): on_batch_assessed,
    internal_type("knowledge", "certification.accepted"): on_certification_accepted,
    "th.fivecogs.listing.requested.v1": on_listing_requested,
    "th.fivecogs.order.placed.v1": on_order_placed,
    "th.fivecogs.order.cancelled.v1": on_order_cancelled,
    "th.fivecogs.payment.received.v1": on_payment_received,
}
