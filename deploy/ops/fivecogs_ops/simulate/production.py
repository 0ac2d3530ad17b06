"""Step 2: inputs delivered to batches and batches produced, in an order that is not the batches' FIFO order.
A v2 batch names its deliveries (`delivery_ids`); a v1 batch costs the deliveries received before it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from fivecogs_ops.simulate import catalogue
from fivecogs_ops.simulate.cast import PlannedBatch, PlannedEnterprise, PlannedProduct
from fivecogs_ops.simulate.records import Sent, retitled, with_value
from fivecogs_ops.simulate.story import Story, at, day_of

DELIVERED = "th.fivecogs.input.delivered.v1"
PRODUCED = "th.fivecogs.batch.produced.v1"
PRODUCED_V2 = "th.fivecogs.batch.produced.v2"  # with lot and best-before date; newer partners send it
UNIT_COST = {"agriculture": (20, 80), "processing": (15, 120), "community_tourism": (150, 600)}


def write(story: Story) -> list[Sent]:
    _choose_pricing(story)
    per_batch: list[list[Sent]] = []
    for product in story.cast.products:
        _plan_batches(story, product)
        per_batch += [_batch_records(story, product, batch) for batch in product.batches]
    _break_a_batch(story, per_batch)
    story.rng.shuffle(per_batch)  # batches arrive in any order; FIFO must follow produced_on, then batch id
    for records in per_batch:
        for sent in records:
            story.writer.add(sent)
    _unknown_enterprise(story)
    return story.writer.take()


def _choose_pricing(story: Story) -> None:
    """One product sells below cost and one exactly at cost, so some settlements have no margin to share."""
    products = story.cast.products
    for product in products:
        low, high = UNIT_COST[product.enterprise.sector]
        product.unit_cost_plan = story.money(low, high)
    products[1 % len(products)].pricing = "loss"
    if len(products) > 2:
        products[2].pricing = "break_even"
        products[2].unit_cost_plan = Decimal(story.rng.randint(20, 60))


def _plan_batches(story: Story, product: PlannedProduct) -> None:
    tourism = product.enterprise.sector == "community_tourism"
    day = day_of(2, 1) + timedelta(days=story.rng.randint(0, 20))
    for _ in range(story.rng.randint(1, 2) if tourism else story.rng.randint(2, 3)):
        quantity = story.rng.randint(10, 30) if tourism else story.rng.randint(20, 80)
        batch = PlannedBatch(story.new_id("b"), quantity, day)
        batch.deliveries = _deliveries(story, product, quantity)
        product.batches.append(batch)
        day += timedelta(days=story.rng.choice((0, 7, 14, 21)))  # 0: two batches made the same day


def _deliveries(story: Story, product: PlannedProduct, quantity: int) -> list[tuple[Decimal, bool]]:
    if product.pricing == "break_even":  # every unit costs exactly the planned price
        whole = product.unit_cost_plan * quantity
        first = (whole * Decimal("0.6")).quantize(Decimal("0.01"))
        return [(first, True), (whole - first, story.chance(0.5))]
    count = story.rng.choices((0, 1, 2, 3), weights=(12, 30, 30, 28))[0]
    if product.pricing == "loss":
        count = max(1, count)  # a batch without inputs costs nothing: no sale of it could be at a loss
    if count == 0:
        return []
    whole = product.unit_cost_plan * quantity * Decimal(story.rng.randint(80, 125)) / 100
    shares = [story.rng.randint(1, 10) for _ in range(count)]
    return [
        ((whole * share / sum(shares)).quantize(Decimal("0.01")) + story.satang(0, 99), story.chance(0.7))
        for share in shares
    ]


def _batch_records(story: Story, product: PlannedProduct, batch: PlannedBatch) -> list[Sent]:
    enterprise = product.enterprise
    crafts = {c.product: c for cs in catalogue.CRAFTS.values() for c in cs}
    items = crafts[product.name].inputs
    records = []
    delivery_ids = [f"{batch.batch_id}-d{number}" for number in range(1, len(batch.deliveries) + 1)]
    for number, (cost, local) in enumerate(batch.deliveries, start=1):
        item, unit = items[(number - 1) % len(items)]
        data = delivery(batch, enterprise, delivery_ids[number - 1], item, unit, cost, local)
        data["quantity"] = _input_quantity(story)
        source = catalogue.pracharat_company(enterprise.province)
        records.append(story.writer.build(DELIVERED, data, source=source, time=at(batch.produced_on, 8, number)))
    source, made = catalogue.cdd_office(enterprise.province), at(batch.produced_on, 17)
    if story.chance(0.35):
        lot = {"lot": f"{catalogue.short_code(enterprise.province).upper()}-{batch.batch_id[-4:]}"}
        expiry = {"expires_on": (batch.produced_on + timedelta(days=365)).isoformat()} if story.chance(0.7) else {}
        # A v2 batch names its deliveries: it waits for each and costs exactly those, whatever the arrival order.
        data = {**production(batch, product), **lot, **expiry, "delivery_ids": delivery_ids}
        records.append(story.writer.build(PRODUCED_V2, data, source=source, time=made))
    else:
        records.append(story.writer.build(PRODUCED, production(batch, product), source=source, time=made))
    return records


def delivery(
    batch: PlannedBatch,
    enterprise: PlannedEnterprise,
    delivery_id: str,
    item: str,
    unit: str,
    cost: Decimal,
    local: bool,
) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "batch_id": batch.batch_id,
        "enterprise_id": enterprise.enterprise_id,
        "item": item,
        "quantity": "10",
        "unit": unit,
        "cost_thb": f"{cost:.2f}",
        "local_source": local,
    }


def production(batch: PlannedBatch, product: PlannedProduct) -> dict[str, Any]:
    return {
        "batch_id": batch.batch_id,
        "enterprise_id": product.enterprise.enterprise_id,
        "product_id": product.product_id,
        "product_name": product.name,
        "quantity": batch.quantity,
        "unit": product.unit,
        "produced_on": batch.produced_on.isoformat(),
    }


def _input_quantity(story: Story) -> str | int:
    # Partners send integers or decimal strings with up to three places.
    if story.chance(0.5):
        return story.rng.randint(1, 200)
    return format(Decimal(story.rng.randint(1, 99999)).scaleb(-3).normalize(), "f")


def _break_a_batch(story: Story, per_batch: list[list[Sent]]) -> None:
    """One batch receives every kind of wrong delivery, before and after it is produced."""
    records = next(r for r in per_batch if len(r) >= 2)
    first, produced = records[0], records[-1]
    data, made = first.data(), produced.data()
    other = next(e for e in story.cast.enterprises if e.enterprise_id != data["enterprise_id"])
    when = at(day_of(4, 2), 9)

    def delivered(changes: dict[str, Any], intent: str, note: str) -> Sent:
        changed = {**data, **changes}
        return story.writer.build(DELIVERED, changed, source=first.source, time=when, intent=intent, note=note)

    def produced_again(changes: dict[str, Any], intent: str, note: str) -> Sent:
        changed = {**made, **changes}
        kind = produced.ce_type  # v1 or v2, as the batch was first produced
        return story.writer.build(kind, changed, source=produced.source, time=when, intent=intent, note=note)

    mine = data["delivery_id"]
    wrong_key = delivered({"delivery_id": mine + "k"}, "schema", "keyed by the enterprise, not the batch")
    before = [
        delivered(
            {"delivery_id": mine + "x", "enterprise_id": other.enterprise_id},
            "rule:batch_enterprise_mismatch",
            "a delivery naming another enterprise",
        ),
        delivered({}, "rule:duplicate_delivery", "a delivery id already on the batch, under a new event id"),
        retitled(first, "duplicate", "a delivery sent twice: a retry"),
        delivered({"delivery_id": mine + "f", "cost_thb": 875.5}, "schema", "a cost as a JSON float"),
        delivered({"delivery_id": mine + "b", "local_source": "yes"}, "schema", "local_source as text"),
        with_value(wrong_key, wrong_key.value, "schema", wrong_key.note, data["enterprise_id"].encode()),
    ]
    after = [
        delivered({"delivery_id": mine + "late"}, "rule:batch_closed", "a delivery after production"),
        produced_again({}, "rule:batch_closed", "the batch produced a second time"),
        produced_again({"quantity": "40"}, "schema", "a unit count as text"),
        story.writer.build(
            PRODUCED_V2,
            {**made, "batch_id": made["batch_id"] + "e", "lot": "L-1", "expires_on": "2024-01-01"},
            source=produced.source,
            time=when,
            intent="schema",
            note="a v2 batch that expires before it is made",
        ),
        story.writer.build(
            PRODUCED_V2,
            {**made, "batch_id": made["batch_id"] + "m", "delivery_ids": [mine + "never"]},
            source=produced.source,
            time=when,
            intent="rule:missing_delivery",
            note="a v2 batch naming a delivery that never comes: it waits, then is refused",
        ),
        delivered(
            {"delivery_id": mine + "n", "batch_id": made["batch_id"] + "n"},
            "accepted",
            "a delivery to a batch that will not name it",
        ),
        story.writer.build(
            PRODUCED_V2,
            {**made, "batch_id": made["batch_id"] + "n", "delivery_ids": []},
            source=produced.source,
            time=when,
            intent="rule:delivery_not_named",
            note="a v2 batch leaving out a delivery it received",
        ),
    ]
    records[1:1] = before
    records.extend(after)


def _unknown_enterprise(story: Story) -> None:
    ghost = story.cast.ghost_enterprise
    product = story.cast.products[0]
    batch = PlannedBatch(story.new_id("b"), 30, day_of(3, 3))
    source = catalogue.cdd_office("Nakhon Ratchasima")
    ghost_owner = PlannedEnterprise(ghost, "ghost", "Nakhon Ratchasima", "processing", 10, 0)
    story.event(
        DELIVERED,
        delivery(batch, ghost_owner, f"{batch.batch_id}-d1", "turmeric root", "kg", Decimal("100.00"), True),
        source=source,
        time=at(day_of(3, 3), 9),
        intent="rule:unknown_enterprise",
        note="a delivery for an enterprise whose registration was refused",
    )
    produced = {**production(batch, product), "enterprise_id": ghost, "product_id": f"{story.tag}-prod-ghost"}
    story.event(
        PRODUCED,
        produced,
        source=source,
        time=at(day_of(3, 3), 17),
        intent="rule:unknown_enterprise",
        note="a batch of an unregistered enterprise",
    )
