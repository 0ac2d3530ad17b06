"""Step 1: distribution policies for the 14 provinces, the 12 subscribers, and the enterprises joining."""

from __future__ import annotations

from typing import Any

from fivecogs_ops.simulate import catalogue, mischief
from fivecogs_ops.simulate.cast import PlannedEnterprise, PlannedProduct
from fivecogs_ops.simulate.records import Sent
from fivecogs_ops.simulate.story import Story, at, day_of
from fivecogs_shared.contracts.partner import Sector
from fivecogs_shared.provinces import TARGET_PROVINCES

REGISTERED = "th.fivecogs.enterprise.registered.v1"
POLICY = "th.fivecogs.distribution.policy.set.v1"
SUBSCRIPTION = "th.fivecogs.subscription.created.v1"

DEFAULT_POLICY = ("0.60", "0.30", "0.10")
# The workshop provinces get fixed policies, so every run has the default, thirds (whose rounding leaves a
# remainder for the community fund) and two other splits; the other ten draw from the list.
WORKSHOP_POLICIES = {
    "Nakhon Si Thammarat": ("0.3333", "0.3334", "0.3333"),
    "Nakhon Ratchasima": DEFAULT_POLICY,
    "Phetchaburi": ("0.50", "0.40", "0.10"),
    "Phitsanulok": ("0.55", "0.35", "0.10"),
}
# A province's policy is the same in every run, whatever the seed: policies take effect at their (story) time,
# and a run with other shares would re-distribute the earlier runs' settlements on the same stack.
OTHER_POLICIES = (
    DEFAULT_POLICY,
    DEFAULT_POLICY,
    ("0.70", "0.20", "0.10"),
    ("0.65", "0.25", "0.10"),
    ("0.45", "0.45", "0.10"),
)
NETWORKS = ("state", "private", "civil_society", "academia", "religion", "media", "people")
TOPICS = ("certification", "listing", "sale", "distribution")
SUBSCRIBERS = 12
SECTORS: tuple[Sector, ...] = ("processing", "agriculture", "community_tourism")


def write(story: Story, enterprises: int) -> list[Sent]:
    for index, province in enumerate(TARGET_PROVINCES):
        _policy(story, province, WORKSHOP_POLICIES.get(province) or OTHER_POLICIES[index % len(OTHER_POLICIES)])
    for number in range(1, SUBSCRIBERS + 1):
        _subscriber(story, number)
    provinces = _province_order(story)
    for index in range(enterprises):
        _enterprise(story, index, provinces[index % len(provinces)])
    _mischief(story)
    return story.writer.take()


def policy_data(province: str, shares: tuple[str, str, str]) -> dict[str, Any]:
    members, fund, reinvest = shares
    return {"province": province, "members_share": members, "community_fund_share": fund, "reinvest_share": reinvest}


def _policy(story: Story, province: str, shares: tuple[str, str, str]) -> None:
    source = catalogue.cdd_office(province)
    story.event(POLICY, policy_data(province, shares), source=source, time=at(day_of(1, 2), 9), note="policy")


def _subscriber(story: Story, number: int) -> None:
    # Subscriber 1 hears everything and subscriber 2 every sale and distribution, so each topic has an audience.
    provinces: list[str]
    if number == 1:
        provinces, topics = [], list(TOPICS)
    elif number == 2:
        provinces, topics = [], ["sale", "distribution"]
    else:
        everywhere = number % 3 == 0
        provinces = [] if everywhere else story.rng.sample(TARGET_PROVINCES, story.rng.randint(1, 3))
        topics = story.rng.sample(TOPICS, story.rng.randint(1, 4))
    data = {
        "subscriber_id": f"sim-subscriber-{number:02d}",
        "network": NETWORKS[(number - 1) % len(NETWORKS)],
        "provinces": provinces,
        "topics": topics,
    }
    story.event(SUBSCRIPTION, data, source=catalogue.NETWORK_DESK, time=at(day_of(1, 3), 10), note="subscriber")


def _enterprise(story: Story, index: int, province: str) -> None:
    sector = SECTORS[index % len(SECTORS)]
    crafts = story.rng.sample(catalogue.CRAFTS[sector], min(2, len(catalogue.CRAFTS[sector])))
    village = story.rng.choice(catalogue.VILLAGES[province])
    members = story.rng.randint(8, 60)
    enterprise = PlannedEnterprise(
        enterprise_id=story.new_id(f"ent-{catalogue.short_code(province)}-", width=3),
        name=f"Ban {village} {crafts[0].group} group",
        province=province,
        sector=sector,
        members=members,
        households=story.rng.randint(0, members // 2),
    )
    for craft in crafts[: 2 if story.chance(0.45) else 1]:
        product_id = story.new_id("prod-", width=4)
        enterprise.products.append(PlannedProduct(product_id, craft.product, craft.unit, enterprise))
    story.cast.enterprises.append(enterprise)
    source = catalogue.cdd_office(province)
    story.event(REGISTERED, registration(enterprise), source=source, time=at(day_of(1, 6), 9 + index % 8))
    if story.chance(0.25):  # the provincial company sends newer member figures (TPMAP survey)
        enterprise.members += story.rng.randint(1, 6)
        enterprise.households = story.rng.randint(0, enterprise.members // 2)
        later = at(day_of(1, 20), 14)
        story.event(REGISTERED, registration(enterprise), source=catalogue.pracharat_company(province), time=later)


def _province_order(story: Story) -> list[str]:
    """The workshop provinces first, then the other ten in an order drawn once per scenario."""
    others = list(TARGET_PROVINCES[4:])
    story.rng.shuffle(others)
    return [*TARGET_PROVINCES[:4], *others]


def registration(enterprise: PlannedEnterprise) -> dict[str, Any]:
    return {
        "enterprise_id": enterprise.enterprise_id,
        "name": enterprise.name,
        "province": enterprise.province,
        "sector": enterprise.sector,
        "members": enterprise.members,
        "target_poor_households": enterprise.households,
    }


def _mischief(story: Story) -> None:
    first = story.cast.enterprises[0]
    other_sector = next(s for s in SECTORS if s != first.sector)
    moved = {**registration(first), "sector": other_sector}
    story.event(
        REGISTERED,
        moved,
        source=catalogue.cdd_office(first.province),
        time=at(day_of(1, 25), 9),
        intent="rule:enterprise_changed",
        note="an enterprise cannot change sector",
    )
    mischief.registrations(story)
    mischief.policies_and_subscriptions(story)
