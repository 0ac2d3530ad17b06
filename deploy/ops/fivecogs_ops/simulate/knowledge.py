"""Step 3: trainings and certifications, with validity windows drawn around the day each product will be listed
(some expire before it, some start after it, two end or start right at the UTC day boundary)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fivecogs_ops.simulate import catalogue
from fivecogs_ops.simulate.cast import PlannedBatch, PlannedCertificate, PlannedProduct
from fivecogs_ops.simulate.production import PRODUCED, production
from fivecogs_ops.simulate.records import Sent, with_headers
from fivecogs_ops.simulate.story import Story, at, day_of
from fivecogs_shared.contracts.partner import Scheme

TRAINED = "th.fivecogs.training.completed.v1"
CERTIFIED = "th.fivecogs.certification.granted.v1"
SCHEMES_BY_SECTOR: dict[str, tuple[Scheme, ...]] = {
    "agriculture": ("gap", "gap", "otop_stars", "tcps"),
    "processing": ("otop_stars", "otop_stars", "tcps", "halal"),
    "community_tourism": ("cbt_standard", "cbt_standard", "otop_stars"),
}
CERTIFIER = {"otop_stars": catalogue.CERTIFIERS[2], "tcps": catalogue.CERTIFIERS[1]}


def write(story: Story) -> list[Sent]:
    products = story.cast.products
    for product in products:
        product.listed_at = at(day_of(6, story.rng.randint(2, 25)), story.rng.randint(9, 16))
    special = _special_products(story, products)
    for enterprise in story.cast.enterprises:
        for _ in range(story.rng.randint(1, 2)):
            story.event(
                TRAINED,
                _training(story, enterprise.enterprise_id),
                source=catalogue.CERTIFIERS[0],
                time=at(day_of(5, 30), 16),
            )
    for product in products:
        if product.product_id not in special:
            _random_certificates(story, product)
    for product in products:
        for certificate in product.certificates:
            granted_on = at(day_of(5, story.rng.randint(1, 28)), 10)
            story.event(CERTIFIED, certification(product, certificate), source=_certifier(certificate), time=granted_on)
    _mischief(story)
    return story.writer.take()


def _special_products(story: Story, products: list[PlannedProduct]) -> set[str]:
    """Certificates that make sure every channel is reached, one product stays uncertified, and the UTC day of a
    listing (not its local day) decides."""
    special: set[str] = set()

    def first(sector: str) -> PlannedProduct | None:
        return next((p for p in products if p.enterprise.sector == sector and p.product_id not in special), None)

    forced: tuple[tuple[str, Scheme, int | None], ...] = (
        ("processing", "otop_stars", 5),
        ("community_tourism", "cbt_standard", None),
        ("agriculture", "tcps", None),
    )
    for sector, scheme, level in forced:
        product = first(sector)
        if product:
            _grant(story, product, scheme, level, *_window(story, product, "valid"))
            special.add(product.product_id)
    rest = [p for p in products if p.product_id not in special and p.enterprise.sector != "community_tourism"]
    if len(rest) >= 3:
        uncertified, ends, starts = rest[-1], rest[-2], rest[-3]
        special |= {uncertified.product_id, ends.product_id, starts.product_id}
        boundary = day_of(6, 27)
        # Listed at 05:30 Bangkok time on the 28th, which is still the 27th in UTC: the certificate holds.
        ends.listed_at = at(boundary + timedelta(days=1), 5, 30)
        _grant(story, ends, "tcps", None, boundary - timedelta(days=365), boundary)
        # Listed at 06:00 on the 28th (23:00 UTC on the 27th): a certificate from the 28th does not hold yet.
        starts.listed_at = at(boundary + timedelta(days=1), 6, 0)
        _grant(story, starts, "tcps", None, boundary + timedelta(days=1), boundary + timedelta(days=730))
        story.cast.must_try[ends.product_id] = "retail"
        story.cast.must_try[starts.product_id] = "retail"
        story.cast.must_try[uncertified.product_id] = "online"
    return special


def _random_certificates(story: Story, product: PlannedProduct) -> None:
    for _ in range(story.rng.choices((0, 1, 2), weights=(15, 50, 35))[0]):
        scheme = story.rng.choice(SCHEMES_BY_SECTOR[product.enterprise.sector])
        level = story.rng.randint(1, 5) if scheme == "otop_stars" else None
        state = story.rng.choices(("valid", "expired", "future"), weights=(70, 15, 15))[0]
        _grant(story, product, scheme, level, *_window(story, product, state))


def _window(story: Story, product: PlannedProduct, state: str) -> tuple[date, date]:
    assert product.listed_at is not None
    listed = product.listed_at.date()
    days = story.rng.randint
    if state == "expired":
        return listed - timedelta(days=days(400, 800)), listed - timedelta(days=days(2, 60))
    if state == "future":
        return listed + timedelta(days=days(2, 60)), listed + timedelta(days=days(400, 800))
    return listed - timedelta(days=days(30, 400)), listed + timedelta(days=days(30, 700))


def _grant(story: Story, product: PlannedProduct, scheme: Scheme, level: int | None, start: date, end: date) -> None:
    certificate_id = story.new_id(f"cert-{scheme.replace('_', '')}-", width=4)
    product.certificates.append(PlannedCertificate(certificate_id, scheme, level, start, end))


def certification(product: PlannedProduct, certificate: PlannedCertificate) -> dict[str, Any]:
    data: dict[str, Any] = {
        "certificate_id": certificate.certificate_id,
        "product_id": product.product_id,
        "enterprise_id": product.enterprise.enterprise_id,
        "scheme": certificate.scheme,
        "valid_from": certificate.valid_from.isoformat(),
        "valid_until": certificate.valid_until.isoformat(),
    }
    if certificate.level is not None:
        data["level"] = certificate.level
    return data


def _certifier(certificate: PlannedCertificate) -> str:
    return CERTIFIER.get(certificate.scheme, catalogue.CERTIFIERS[0])


def _training(story: Story, enterprise_id: str) -> dict[str, Any]:
    return {
        "training_id": story.new_id("trn-"),
        "enterprise_id": enterprise_id,
        "topic": story.rng.choice(catalogue.TRAINING_TOPICS),
        "participants": story.rng.randint(5, 30),
        "completed_on": (day_of(2, 1) + timedelta(days=story.rng.randint(0, 110))).isoformat(),
    }


def _mischief(story: Story) -> None:
    cast = story.cast
    a, b = cast.enterprises[0], cast.enterprises[1]
    product = a.products[0]
    when = at(day_of(5, 31), 10)
    academic = catalogue.CERTIFIERS[0]

    def grant(changes: dict[str, Any], intent: str, note: str, base: PlannedProduct = product) -> Sent:
        certificate = PlannedCertificate(story.new_id("cert-bad-"), "gap", None, day_of(1, 1), day_of(12, 31))
        data = {**certification(base, certificate), **changes}
        return story.event(CERTIFIED, data, source=academic, time=when, intent=intent, note=note)

    story.event(
        TRAINED,
        _training(story, cast.ghost_enterprise),
        source=academic,
        time=when,
        intent="rule:unknown_enterprise",
        note="a training of an unregistered enterprise",
    )
    grant(
        {"enterprise_id": cast.ghost_enterprise},
        "rule:unknown_enterprise",
        "a certificate for an unregistered enterprise",
    )
    grant({"product_id": f"{story.tag}-prod-none"}, "rule:unknown_product", "a product nobody produced")
    grant({"enterprise_id": b.enterprise_id}, "rule:unknown_product", "a product another enterprise makes")
    granted = next((s for s in _certifications(story) if s.data()["product_id"] == product.product_id), None)
    if granted is not None:
        repeat = {**granted.data(), "valid_until": "2030-12-31"}
        story.event(
            CERTIFIED,
            repeat,
            source=granted.source,
            time=when,
            intent="rule:duplicate_certificate",
            note="a certificate id granted twice",
        )
        story.again(granted, "duplicate", "a certification sent twice: a retry")
    grant({"scheme": "otop_stars"}, "schema", "OTOP stars without a level")
    grant({"level": 2}, "schema", "a level for GAP, which has none")
    grant({"valid_from": "2025-12-31", "valid_until": "2025-01-01"}, "schema", "valid until before valid from")
    certificate = PlannedCertificate(story.new_id("cert-bad-"), "gap", None, day_of(1, 1), day_of(12, 31))
    misrouted = story.writer.build(CERTIFIED, certification(product, certificate), source=academic, time=when)
    listing_type = {"ce_type": b"th.fivecogs.listing.requested.v1"}
    story.writer.add(with_headers(misrouted, listing_type, "unknown_type", "a marketing type on the knowledge topic"))
    _stolen_product(story)


def _certifications(story: Story) -> list[Sent]:
    return [s for s in story.writer.written if s.ce_type == CERTIFIED and s.intent == "accepted"]


def _stolen_product(story: Story) -> None:
    """Inputs refuses a batch of a product another enterprise makes (known only once step 2 has settled)."""
    a, b = story.cast.enterprises[0], story.cast.enterprises[1]
    product = a.products[0]
    batch = PlannedBatch(story.new_id("b"), 25, day_of(5, 20))
    data = {**production(batch, product), "enterprise_id": b.enterprise_id}
    story.event(
        PRODUCED,
        data,
        source=catalogue.cdd_office(b.province),
        time=at(day_of(5, 20), 17),
        intent="rule:product_enterprise_mismatch",
        note="a product made by another enterprise",
    )
