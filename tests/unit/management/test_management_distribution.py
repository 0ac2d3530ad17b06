"""How a settlement's margin goes back to the locality: shares, rounding, losses, policies per province."""

from decimal import Decimal

import pytest

from fivecogs_management import domain
from fivecogs_shared.contracts import DEFAULT_DISTRIBUTION_POLICY, internal, partner

D = Decimal


def _policy(members: str, fund: str, reinvest: str) -> domain.Policy:
    return domain.Policy(D(members), D(fund), D(reinvest))


def test_default_policy_splits_sixty_thirty_ten() -> None:
    made = domain.distribute(D("1000.00"), D("550.00"), DEFAULT_DISTRIBUTION_POLICY)

    assert made is not None
    assert made.margin_thb == D("450.00")
    assert (made.members_thb, made.community_fund_thb, made.reinvest_thb) == (D("270.00"), D("135.00"), D("45.00"))


def test_members_and_reinvest_round_half_up_and_the_fund_takes_the_remainder() -> None:
    # margin 100.05: members 60.03 exactly; reinvest 10.005 -> 10.01 (half up, not to even);
    # the fund gets 100.05 - 60.03 - 10.01 = 30.01, not round(30.015) = 30.02 which would invent a satang.
    made = domain.distribute(D("100.05"), D("0.00"), DEFAULT_DISTRIBUTION_POLICY)

    assert made is not None
    assert made.members_thb == D("60.03")
    assert made.reinvest_thb == D("10.01")
    assert made.community_fund_thb == D("30.01")


def test_members_round_half_up_on_an_odd_satang() -> None:
    # 0.3333 x 10.15 = 3.383 -> 3.38; 0.3334 x 10.15 = 3.38401 -> 3.38; the fund keeps 3.39.
    made = domain.distribute(D("10.15"), D("0.00"), _policy("0.3333", "0.3333", "0.3334"))

    assert made is not None
    assert (made.members_thb, made.community_fund_thb, made.reinvest_thb) == (D("3.38"), D("3.39"), D("3.38"))


def test_members_share_rounds_up_at_exactly_half_a_satang() -> None:
    # 0.5 x 0.05 = 0.025 -> 0.03 (banker's rounding would give 0.02)
    made = domain.distribute(D("0.05"), D("0.00"), _policy("0.5", "0.5", "0"))

    assert made is not None
    assert (made.members_thb, made.community_fund_thb, made.reinvest_thb) == (D("0.03"), D("0.02"), D("0.00"))


@pytest.mark.parametrize(
    ("revenue", "cost"),
    [("999.99", "0.01"), ("0.07", "0.00"), ("12345.67", "2345.66"), ("1.00", "0.99"), ("333.33", "0.00")],
)
@pytest.mark.parametrize(
    "policy",
    [DEFAULT_DISTRIBUTION_POLICY, _policy("0.3333", "0.3334", "0.3333"), _policy("0.7", "0.25", "0.05")],
)
def test_the_three_parts_sum_to_the_margin_exactly(revenue: str, cost: str, policy: domain.Policy) -> None:
    made = domain.distribute(D(revenue), D(cost), policy)

    assert made is not None
    assert made.members_thb + made.community_fund_thb + made.reinvest_thb == D(revenue) - D(cost)
    assert made.policy == policy


@pytest.mark.parametrize(("revenue", "cost"), [("500.00", "500.00"), ("400.00", "650.25"), ("0.00", "0.00")])
def test_no_margin_distributes_nothing(revenue: str, cost: str) -> None:
    assert domain.distribute(D(revenue), D(cost), DEFAULT_DISTRIBUTION_POLICY) is None
    assert domain.margin_of(D(revenue), D(cost)) == D(revenue) - D(cost)


def test_a_province_without_a_policy_uses_the_default() -> None:
    assert domain.policy_in_force(None) == DEFAULT_DISTRIBUTION_POLICY
    assert _policy("0.60", "0.30", "0.10") == DEFAULT_DISTRIBUTION_POLICY


def test_a_province_policy_set_by_a_partner_is_the_one_in_force() -> None:
    command = partner.DistributionPolicySet(
        province="Nan", members_share=D("0.5"), community_fund_share=D("0.4"), reinvest_share=D("0.1")
    )
    policy = domain.policy_in_force(domain.policy_of(command))

    made = domain.distribute(D("300.00"), D("100.00"), policy)

    assert policy == _policy("0.5", "0.4", "0.1")
    assert made is not None
    assert (made.members_thb, made.community_fund_thb, made.reinvest_thb) == (D("100.00"), D("80.00"), D("20.00"))


def test_a_distribution_fits_the_contract_it_is_published_with() -> None:
    made = domain.distribute(D("100.05"), D("0.00"), _policy("0.3333", "0.3334", "0.3333"))
    assert made is not None

    event = internal.DistributionMade(
        distribution_id="o-1:e-1",
        settlement_id="o-1:e-1",
        enterprise_id="e-1",
        province="Nan",
        margin_thb=made.margin_thb,
        members_thb=made.members_thb,
        community_fund_thb=made.community_fund_thb,
        reinvest_thb=made.reinvest_thb,
        members_share=made.policy.members_share,
        community_fund_share=made.policy.community_fund_share,
        reinvest_share=made.policy.reinvest_share,
        product_ids=["p-1"],
    )

    assert event.model_dump(mode="json")["members_thb"] == "33.35"


def test_two_roundings_never_push_the_community_fund_below_zero() -> None:
    from decimal import Decimal as D

    from fivecogs_management.domain import Policy, distribute

    parts = distribute(D("10.01"), D("10.00"), Policy(D("0.5"), D("0"), D("0.5")))
    assert parts is not None
    assert (parts.members_thb, parts.community_fund_thb, parts.reinvest_thb) == (D("0.01"), D("0.00"), D("0.00"))
