"""Knowledge: the trainings enterprises complete, the certifications their products earn, and the assessment
of every produced batch against both. Pure rules and state transitions; no I/O."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date

from fivecogs_shared.contracts import internal, partner
from fivecogs_shared.errors import Awaiting, RuleViolation


@dataclass(frozen=True)
class Enterprise:
    """What knowledge needs of an enterprise inputs registered: where it is (its events carry the province)."""

    enterprise_id: str
    province: str
    sector: str


@dataclass(frozen=True)
class Batch:
    """A produced batch, as far as knowledge needs it: which enterprise makes which product."""

    batch_id: str
    enterprise_id: str
    product_id: str
    produced_on: date


@dataclass(frozen=True)
class Training:
    training_id: str
    enterprise_id: str
    topic: str
    participants: int
    completed_on: date


@dataclass(frozen=True)
class Certification:
    certificate_id: str
    product_id: str
    enterprise_id: str
    scheme: partner.Scheme
    level: int | None
    valid_from: date
    valid_until: date

    def valid_on(self, day: date) -> bool:
        # Both days included: a certificate valid until the 31st still counts on the 31st.
        return self.valid_from <= day <= self.valid_until


def enterprise_ref(enterprise_id: str) -> str:
    return f"enterprise:{enterprise_id}"


def product_ref(enterprise_id: str, product_id: str) -> str:
    """A product as made by one enterprise: what a certification of it waits for."""
    return f"product:{enterprise_id}:{product_id}"


def learn_enterprise(event: internal.EnterpriseRegistered) -> Enterprise:
    """Inputs decides registrations; knowledge keeps the latest values it announced."""
    return Enterprise(event.enterprise_id, event.province, event.sector)


def learn_batch(event: internal.BatchProduced) -> tuple[Enterprise, Batch]:
    """A produced batch proves its enterprise is registered (inputs refuses batches of unknown enterprises) and
    carries its province and sector, which inputs never lets change: knowing the enterprise from it keeps
    knowledge right even when the batch is read before the registration, which sits on another partition."""
    enterprise = Enterprise(event.enterprise_id, event.province, event.sector)
    return enterprise, Batch(event.batch_id, event.enterprise_id, event.product_id, event.produced_on)


def record_training(enterprise: Enterprise | None, command: partner.TrainingCompleted) -> Training:
    _require_enterprise(enterprise, command.enterprise_id)
    return Training(
        command.training_id, command.enterprise_id, command.topic, command.participants, command.completed_on
    )


def grant(
    enterprise: Enterprise | None,
    products_made: Collection[str],
    existing: Certification | None,
    command: partner.CertificationGranted,
) -> Certification:
    """Accept a certification of a product the enterprise has produced; a certificate id is granted once.

    `products_made` are the products of the enterprise's produced batches."""
    _require_enterprise(enterprise, command.enterprise_id)
    if command.product_id not in products_made:
        raise Awaiting(
            "unknown_product",
            f"enterprise {command.enterprise_id} has never produced a batch of product {command.product_id}",
            product_ref(command.enterprise_id, command.product_id),
        )
    if existing is not None:
        raise RuleViolation(
            "duplicate_certificate",
            f"certificate {command.certificate_id} was already granted (to product {existing.product_id})",
        )
    return Certification(
        command.certificate_id,
        command.product_id,
        command.enterprise_id,
        command.scheme,
        command.level,
        command.valid_from,
        command.valid_until,
    )


def assess(
    batch: internal.BatchProduced,
    certifications: Iterable[Certification],
    trainings: Iterable[Training],
) -> internal.BatchAssessed:
    """The batch's facts unchanged, with what stood behind it the day it was made: the product's certifications
    valid that day and the trainings its enterprise had completed by then. Never rejects."""
    day = batch.produced_on
    held = sorted(
        (c for c in certifications if c.product_id == batch.product_id and c.valid_on(day)),
        key=lambda c: c.certificate_id,
    )
    completed = {t.training_id for t in trainings if t.enterprise_id == batch.enterprise_id and t.completed_on <= day}
    return internal.BatchAssessed(
        **batch.model_dump(),
        certifications=[
            internal.HeldCertification(certificate_id=c.certificate_id, scheme=c.scheme, level=c.level) for c in held
        ],
        trainings_completed=len(completed),
    )


def _require_enterprise(enterprise: Enterprise | None, enterprise_id: str) -> None:
    if enterprise is None:
        raise Awaiting(
            "unknown_enterprise", f"enterprise {enterprise_id} is not registered", enterprise_ref(enterprise_id)
        )
