"""The knowledge rules, pure: trainings, certifications and the assessment of produced batches."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from fivecogs_knowledge import domain
from fivecogs_shared.contracts import internal, partner
from fivecogs_shared.errors import RuleViolation

ENTERPRISE = domain.Enterprise("ent-1", "Nakhon Si Thammarat", "processing")


def _training(**changes: Any) -> partner.TrainingCompleted:
    fields: dict[str, Any] = {
        "training_id": "trn-1",
        "enterprise_id": "ent-1",
        "topic": "bookkeeping",
        "participants": 12,
        "completed_on": date(2025, 2, 20),
    }
    return partner.TrainingCompleted(**(fields | changes))


def _grant(**changes: Any) -> partner.CertificationGranted:
    fields: dict[str, Any] = {
        "certificate_id": "otop-1",
        "product_id": "prod-balm",
        "enterprise_id": "ent-1",
        "scheme": "otop_stars",
        "level": 4,
        "valid_from": date(2025, 1, 1),
        "valid_until": date(2025, 12, 31),
    }
    return partner.CertificationGranted(**(fields | changes))


def _batch(**changes: Any) -> internal.BatchProduced:
    fields: dict[str, Any] = {
        "batch_id": "batch-1",
        "enterprise_id": "ent-1",
        "province": "Nakhon Si Thammarat",
        "sector": "processing",
        "product_id": "prod-balm",
        "product_name": "Herbal balm 50 g",
        "quantity": 200,
        "unit": "jar",
        "produced_on": date(2025, 3, 1),
        "cost_thb": Decimal("1550.75"),
        "non_local_cost_thb": Decimal("300.25"),
        "delivery_ids": ["d1", "d2"],
    }
    return internal.BatchProduced(**(fields | changes))


def _certification(certificate_id: str, valid_from: date, valid_until: date, **changes: Any) -> domain.Certification:
    return domain.grant(
        ENTERPRISE,
        {"prod-balm", "prod-soap"},
        None,
        _grant(certificate_id=certificate_id, valid_from=valid_from, valid_until=valid_until, **changes),
    )


def _completed(training_id: str, on: date, enterprise_id: str = "ent-1") -> domain.Training:
    return domain.Training(training_id, enterprise_id, "bookkeeping", 5, on)


# --- learning from inputs -------------------------------------------------------------------------------


def test_a_registration_is_learnt_with_its_province() -> None:
    registered = internal.EnterpriseRegistered(
        enterprise_id="ent-9",
        name="Ban Khiriwong Group",
        province="Chiang Mai",
        region="north",
        sector="agriculture",
        members=10,
        target_poor_households=3,
    )
    assert domain.learn_enterprise(registered) == domain.Enterprise("ent-9", "Chiang Mai", "agriculture")


def test_a_batch_tells_which_enterprise_makes_the_product() -> None:
    enterprise, batch = domain.learn_batch(_batch())
    assert batch == domain.Batch("batch-1", "ent-1", "prod-balm", date(2025, 3, 1))
    assert enterprise == ENTERPRISE


# --- training.completed ---------------------------------------------------------------------------------


def test_training_of_a_known_enterprise_is_recorded() -> None:
    training = domain.record_training(ENTERPRISE, _training())
    assert training == domain.Training("trn-1", "ent-1", "bookkeeping", 12, date(2025, 2, 20))


def test_training_of_an_unknown_enterprise_is_refused() -> None:
    with pytest.raises(RuleViolation) as refused:
        domain.record_training(None, _training())
    assert refused.value.reason == "rule:unknown_enterprise"


# --- certification.granted ------------------------------------------------------------------------------


def test_certification_of_a_produced_product_is_accepted() -> None:
    certification = domain.grant(ENTERPRISE, {"prod-balm"}, None, _grant())
    assert certification == domain.Certification(
        "otop-1", "prod-balm", "ent-1", "otop_stars", 4, date(2025, 1, 1), date(2025, 12, 31)
    )


def test_certification_of_an_unknown_enterprise_is_refused_first() -> None:
    existing = domain.grant(ENTERPRISE, {"prod-balm"}, None, _grant())
    with pytest.raises(RuleViolation) as refused:
        domain.grant(None, set(), existing, _grant())
    assert refused.value.reason == "rule:unknown_enterprise"


def test_certification_of_a_product_the_enterprise_never_produced_is_refused() -> None:
    with pytest.raises(RuleViolation) as refused:
        domain.grant(ENTERPRISE, {"prod-soap"}, None, _grant())
    assert refused.value.reason == "rule:unknown_product"


def test_unknown_product_comes_before_duplicate_certificate() -> None:
    existing = domain.grant(ENTERPRISE, {"prod-balm"}, None, _grant())
    with pytest.raises(RuleViolation) as refused:
        domain.grant(ENTERPRISE, set(), existing, _grant())
    assert refused.value.reason == "rule:unknown_product"


def test_a_certificate_id_is_granted_once() -> None:
    existing = domain.grant(ENTERPRISE, {"prod-balm"}, None, _grant())
    with pytest.raises(RuleViolation) as refused:
        domain.grant(ENTERPRISE, {"prod-balm", "prod-soap"}, existing, _grant(product_id="prod-soap"))
    assert refused.value.reason == "rule:duplicate_certificate"


# --- assessment -----------------------------------------------------------------------------------------


def test_assessment_passes_the_batch_facts_on_unchanged() -> None:
    batch = _batch()
    assessed = domain.assess(batch, [], [])
    facts = assessed.model_dump(exclude={"certifications", "trainings_completed"})
    assert facts == batch.model_dump()
    assert assessed.certifications == []
    assert assessed.trainings_completed == 0


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "held"),
    [
        (date(2025, 1, 1), date(2025, 12, 31), True),
        (date(2025, 3, 1), date(2025, 3, 1), True),  # both days included
        (date(2025, 3, 2), date(2025, 12, 31), False),  # not yet valid
        (date(2024, 1, 1), date(2025, 2, 28), False),  # expired the day before
    ],
)
def test_certifications_count_when_valid_on_the_production_day(valid_from: date, valid_until: date, held: bool) -> None:
    assessed = domain.assess(_batch(), [_certification("c-1", valid_from, valid_until)], [])
    assert [c.certificate_id for c in assessed.certifications] == (["c-1"] if held else [])


def test_only_the_products_own_certifications_are_held() -> None:
    certifications = [
        _certification("c-soap", date(2025, 1, 1), date(2025, 12, 31), product_id="prod-soap"),
        _certification("c-gap", date(2025, 1, 1), date(2025, 12, 31), scheme="gap", level=None),
        _certification("c-otop", date(2025, 1, 1), date(2025, 12, 31)),
    ]
    assessed = domain.assess(_batch(), certifications, [])
    assert assessed.certifications == [
        internal.HeldCertification(certificate_id="c-gap", scheme="gap", level=None),
        internal.HeldCertification(certificate_id="c-otop", scheme="otop_stars", level=4),
    ]


def test_trainings_count_when_completed_on_or_before_the_production_day() -> None:
    trainings = [
        _completed("t-before", date(2025, 2, 20)),
        _completed("t-same-day", date(2025, 3, 1)),
        _completed("t-after", date(2025, 3, 2)),
        _completed("t-other-enterprise", date(2025, 1, 1), enterprise_id="ent-2"),
    ]
    assert domain.assess(_batch(), [], trainings).trainings_completed == 2
