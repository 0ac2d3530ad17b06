"""Handlers of the knowledge service: decode, apply the domain in the unit of work, emit."""

from __future__ import annotations

from collections.abc import Mapping

from fivecogs_knowledge import domain, store
from fivecogs_shared.consumer import Handler
from fivecogs_shared.contracts import internal, internal_type, partner
from fivecogs_shared.envelope import Envelope
from fivecogs_shared.uow import UnitOfWork

TRAINING_RECORDED = internal_type("knowledge", "training.recorded")
CERTIFICATION_ACCEPTED = internal_type("knowledge", "certification.accepted")
BATCH_ASSESSED = internal_type("knowledge", "batch.assessed")


async def on_enterprise_registered(uow: UnitOfWork, event: Envelope) -> None:
    enterprise = domain.learn_enterprise(event.data_as(internal.EnterpriseRegistered))
    await store.save_enterprise(uow.conn, enterprise)
    uow.known(domain.enterprise_ref(enterprise.enterprise_id))


async def on_batch_produced(uow: UnitOfWork, event: Envelope) -> None:
    facts = event.data_as(internal.BatchProduced)
    enterprise, batch = domain.learn_batch(facts)
    await store.know_enterprise(uow.conn, enterprise)
    await store.save_batch(uow.conn, batch)
    uow.known(domain.enterprise_ref(batch.enterprise_id), domain.product_ref(batch.enterprise_id, batch.product_id))
    assessed = domain.assess(
        facts,
        await store.certifications_of(uow.conn, facts.product_id),
        await store.trainings_of(uow.conn, facts.enterprise_id),
    )
    uow.emit(BATCH_ASSESSED, assessed, key=assessed.product_id)


async def on_training_completed(uow: UnitOfWork, event: Envelope) -> None:
    command = event.data_as(partner.TrainingCompleted)
    enterprise = await store.load_enterprise(uow.conn, command.enterprise_id)
    training = domain.record_training(enterprise, command)
    await store.save_training(uow.conn, training)
    assert enterprise is not None  # record_training() refused an unknown enterprise
    uow.emit(
        TRAINING_RECORDED,
        internal.TrainingRecorded(province=enterprise.province, **command.model_dump()),
        key=training.enterprise_id,
    )


async def on_certification_granted(uow: UnitOfWork, event: Envelope) -> None:
    command = event.data_as(partner.CertificationGranted)
    enterprise = await store.load_enterprise(uow.conn, command.enterprise_id)
    certification = domain.grant(
        enterprise,
        await store.products_of(uow.conn, command.enterprise_id),
        await store.load_certification(uow.conn, command.certificate_id),
        command,
    )
    await store.save_certification(uow.conn, certification)
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
