"""Handlers of the inputs service: decode the partner event, apply the domain to the batch's state, emit."""

from __future__ import annotations

from collections.abc import Mapping

from fivecogs_inputs import domain
from fivecogs_inputs.store import InputsState
from fivecogs_shared.consumer import Handler
from fivecogs_shared.contracts import internal, internal_type, partner
from fivecogs_shared.envelope import Envelope
from fivecogs_shared.provinces import region_of
from fivecogs_shared.uow import UnitOfWork

ENTERPRISE_REGISTERED = internal_type("inputs", "enterprise.registered")
INPUT_DELIVERED = internal_type("inputs", "input.delivered")
BATCH_PRODUCED = internal_type("inputs", "batch.produced")


def _state(uow: UnitOfWork) -> InputsState:
    assert isinstance(uow.state, InputsState), "the inputs service runs with its InputsState"
    return uow.state


async def on_enterprise_registered(uow: UnitOfWork, event: Envelope) -> None:
    command, state = event.data_as(partner.EnterpriseRegistered), _state(uow)
    enterprise = domain.register(await state.enterprise(command.enterprise_id), command)
    state.save_enterprise(enterprise)
    uow.known(domain.enterprise_ref(enterprise.enterprise_id))
    uow.emit(
        ENTERPRISE_REGISTERED,
        internal.EnterpriseRegistered(
            enterprise_id=enterprise.enterprise_id,
            name=enterprise.name,
            province=enterprise.province,
            region=region_of(enterprise.province),
            sector=enterprise.sector,
            members=enterprise.members,
            target_poor_households=enterprise.target_poor_households,
        ),
        key=enterprise.enterprise_id,
    )


async def on_input_delivered(uow: UnitOfWork, event: Envelope) -> None:
    command, state = event.data_as(partner.InputDelivered), _state(uow)
    enterprise = await state.enterprise(command.enterprise_id)
    batch = domain.deliver(enterprise, await state.batch(command.batch_id), command)
    state.save_batch(batch)
    uow.known(domain.delivery_ref(command.batch_id, command.delivery_id))
    assert enterprise is not None  # deliver() refused an unknown enterprise
    uow.emit(
        INPUT_DELIVERED,
        internal.InputDelivered(province=enterprise.province, **command.model_dump()),
        key=command.batch_id,
    )


async def on_batch_produced(uow: UnitOfWork, event: Envelope) -> None:
    command, state = event.data_as(partner.BatchProducedV2), _state(uow)  # v1 arrives upcast
    enterprise = await state.enterprise(command.enterprise_id)
    owner = await state.product_owner(command.product_id)
    batch = domain.produce(enterprise, await state.batch(command.batch_id), owner, command)
    state.save_batch(batch)
    assert enterprise is not None
    uow.emit(
        BATCH_PRODUCED,
        internal.BatchProduced(
            **command.model_dump(exclude={"delivery_ids"}),  # the batch's own list below: the same when named
            province=enterprise.province,
            sector=enterprise.sector,
            cost_thb=batch.cost_thb,
            non_local_cost_thb=batch.non_local_cost_thb,
            delivery_ids=[d.delivery_id for d in batch.deliveries],
        ),
        key=command.batch_id,
    )


HANDLERS: Mapping[str, Handler] = {
    "th.fivecogs.enterprise.registered.v1": on_enterprise_registered,
    "th.fivecogs.input.delivered.v1": on_input_delivered,
    "th.fivecogs.batch.produced.v2": on_batch_produced,
}
