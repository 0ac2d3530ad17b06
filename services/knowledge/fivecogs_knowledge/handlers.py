"""Handlers of the knowledge service: decode, apply the domain in the unit of work, emit."""

from __future__ import annotations

from collections.abc import Mapping

from fivecogs_knowledge import domain
from fivecogs_knowledge.store import KnowledgeState
from fivecogs_shared.consumer import Handler
from fivecogs_shared.contracts import internal, internal_type, partner
from fivecogs_shared.envelope import Envelope
from fivecogs_shared.uow import UnitOfWork

TRAINING_RECORDED = internal_type("knowledge", "training.recorded")
CERTIFICATION_ACCEPTED = internal_type("knowledge", "certification.accepted")
BATCH_ASSESSED = internal_type("knowledge", "batch.assessed")


def _state(uow: UnitOfWork) -> KnowledgeState:
    assert isinstance(uow.state, KnowledgeState), "the knowledge service runs with its KnowledgeState"
    return uow.state


async def on_enterprise_registered(uow: UnitOfWork, event: Envelope) -> None:
    enterprise = domain.learn_enterprise(event.data_as(internal.EnterpriseRegistered))
    _state(uow).save_enterprise(enterprise)
    uow.known(domain.enterprise_ref(enterprise.enterprise_id))


async def on_batch_produced(uow: UnitOfWork, event: Envelope) -> None:
    facts, state = event.data_as(internal.BatchProduced), _state(uow)
    enterprise, batch = domain.learn_batch(facts)
    await state.know_enterprise(enterprise)
    await state.save_batch(batch)
    uow.known(domain.enterprise_ref(batch.enterprise_id), domain.product_ref(batch.enterprise_id, batch.product_id))
    assessed = domain.assess(
        facts,
        await state.certifications_of(facts.product_id),
        await state.trainings_of(facts.enterprise_id),
    )
    uow.emit(BATCH_ASSESSED, assessed, key=assessed.product_id)


async def on_training_completed(uow: UnitOfWork, event: Envelope) -> None:
    command, state = event.data_as(partner.TrainingCompleted), _state(uow)
    enterprise = await state.enterprise(command.enterprise_id)
    training = domain.record_training(enterprise, command)
    await state.save_training(training)
    assert enterprise is not None  # record_training() refused an unknown enterprise
    uow.emit(
        TRAINING_RECORDED,
        internal.TrainingRecorded(province=enterprise.province, **command.model_dump()),
        key=training.enterprise_id,
    )


async def on_certification_granted(uow: UnitOfWork, event: Envelope) -> None:
    command, state = event.data_as(partner.CertificationGranted), _state(uow)
    enterprise = await state.enterprise(command.enterprise_id)
    certification = domain.grant(
        enterprise,
        await state.products_of(command.enterprise_id),
        await state.certification(command.certificate_id),
        command,
    )
    state.save_certification(certification)
    assert enterprise is not None  # grant() refused an unknown enterprise
    uow.emit(
        CERTIFICATION_ACCEPTED,
        internal.CertificationAccepted(province=enterprise.province, **command.model_dump()),
        key=certification.product_id,
    )


HANDLERS: Mapping[str, Handler] = {
    internal_type("inputs", "enterprise.registered"): on_enterprise_registered,
    internal_type("inputs", "batch.produced"): on_batch_produced,
    "th.fivecogs.training.completed.v1": on_training_completed,
    "th.fivecogs.certification.granted.v1": on_certification_granted,
}
