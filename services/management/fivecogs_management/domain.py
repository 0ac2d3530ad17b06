"""Management: how a settlement's margin goes back to the locality. Pure rules; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fivecogs_shared.contracts import DEFAULT_DISTRIBUTION_POLICY, partner
from fivecogs_shared.money import round_half_up

# The shares of a province's distribution policy (members / community fund / reinvest).
Policy = partner.DistributionShares


@dataclass(frozen=True)
class Distribution:
    """A positive margin split three ways; the parts sum to the margin exactly."""

    margin_thb: Decimal
    members_thb: Decimal
    community_fund_thb: Decimal
    reinvest_thb: Decimal
    policy: Policy


def policy_of(command: partner.DistributionPolicySet) -> Policy:
    return Policy(command.members_share, command.community_fund_share, command.reinvest_share)


def policy_in_force(province_policy: Policy | None) -> Policy:
    """A province without a policy set by a partner distributes by the programme default."""
    return province_policy if province_policy is not None else DEFAULT_DISTRIBUTION_POLICY


def margin_of(revenue_thb: Decimal, cost_thb: Decimal) -> Decimal:
    return revenue_thb - cost_thb


def distribute(revenue_thb: Decimal, cost_thb: Decimal, policy: Policy) -> Distribution | None:
    """Members and reinvestment are rounded half up; the community fund takes the remainder, so no satang
    of the margin is lost or invented by rounding. A loss, or breaking even, distributes nothing.

    Two half-up roundings can together exceed a tiny margin (0.01 at 0.5 / 0 / 0.5 gives 0.01 + 0.01): the
    reinvestment is then capped at what the members left, so the community fund never goes negative."""
    margin = margin_of(revenue_thb, cost_thb)
    if margin <= 0:
        return None
    members = round_half_up(margin * policy.members_share)
    reinvest = min(round_half_up(margin * policy.reinvest_share), margin - members)
    return Distribution(margin, members, margin - members - reinvest, reinvest, policy)
