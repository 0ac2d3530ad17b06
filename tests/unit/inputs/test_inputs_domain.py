"""The inputs rules, pure: what waits for a registration or a delivery, and what a batch costs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from fivecogs_inputs import domain
from fivecogs_shared.contracts import partner
from fivecogs_shared.errors import Awaiting, RuleViolation

ENTERPRISE = domain.Enterprise("ent-1", "Ban Rai Basketry", "Nan", "processing", 12, 3)


def _delivery(delivery_id: str, cost: str) -> partner.InputDelivered:
    return partner.InputDelivered(
        delivery_id=delivery_id,
        batch_id="b-1",
        enterprise_id="ent-1",
        item="bamboo",
        quantity=Decimal("10"),
        unit="kg",
        cost_thb=Decimal(cost),
        local_source=True,
    )


def _produced(**changes: Any) -> partner.BatchProducedV2:
    fields: dict[str, Any] = {
        "batch_id": "b-1",
        "enterprise_id": "ent-1",
        "product_id": "basket",
        "product_name": "Bamboo basket",
        "quantity": 10,
        "unit": "piece",
        "produced_on": date(2025, 3, 1),
    }
    return partner.BatchProducedV2(**(fields | changes))


def _received(*deliveries: tuple[str, str]) -> domain.Batch:
    batch = None
    for delivery_id, cost in deliveries:
        batch = domain.deliver(ENTERPRISE, batch, _delivery(delivery_id, cost))
    assert batch is not None
    return batch


def test_a_delivery_for_an_enterprise_not_registered_waits_for_its_registration() -> None:
    with pytest.raises(Awaiting) as waiting:
        domain.deliver(None, None, _delivery("d-1", "10.00"))
    assert (waiting.value.reason, waiting.value.awaits) == ("rule:unknown_enterprise", "enterprise:ent-1")


def test_a_batch_naming_a_delivery_not_received_waits_for_it() -> None:
    with pytest.raises(Awaiting) as waiting:
        domain.produce(ENTERPRISE, _received(("d-1", "10.00")), None, _produced(delivery_ids=["d-1", "d-2"]))
    assert (waiting.value.reason, waiting.value.awaits) == ("rule:missing_delivery", "delivery:b-1:d-2")


def test_a_batch_costs_exactly_the_deliveries_it_names_in_the_order_it_names_them() -> None:
    received = _received(("d-2", "300.25"), ("d-1", "1250.50"))  # arrived in the other order
    batch = domain.produce(ENTERPRISE, received, None, _produced(delivery_ids=["d-1", "d-2"]))
    assert batch.cost_thb == Decimal("1550.75")
    assert [d.delivery_id for d in batch.deliveries] == ["d-1", "d-2"]


def test_a_batch_that_leaves_out_a_delivery_it_received_is_refused_not_held() -> None:
    with pytest.raises(RuleViolation) as refused:
        domain.produce(ENTERPRISE, _received(("d-1", "1.00"), ("d-2", "2.00")), None, _produced(delivery_ids=["d-1"]))
    assert not isinstance(refused.value, Awaiting)
    assert refused.value.reason == "rule:delivery_not_named"


def test_a_batch_naming_no_deliveries_costs_those_received_before_it() -> None:
    batch = domain.produce(ENTERPRISE, _received(("d-1", "1.00")), None, _produced())
    assert batch.cost_thb == Decimal("1.00")
    with pytest.raises(RuleViolation) as refused:
        domain.deliver(ENTERPRISE, batch, _delivery("d-2", "2.00"))
    assert refused.value.reason == "rule:batch_closed"
    assert not isinstance(refused.value, Awaiting)


def test_a_batch_cannot_name_a_delivery_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        _produced(delivery_ids=["d-1", "d-1"])
