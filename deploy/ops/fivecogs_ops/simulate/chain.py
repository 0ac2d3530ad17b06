"""docs/rules.md written again, independently of the services: the state of the whole value chain and the rule
behind every decision, as one in-memory machine. Events between cogs take effect at once here; the scenario
waits for the real chain to catch up between its waves, so the delay never changes an outcome.

A rule that an event breaks only because what it refers to is not there yet raises `Awaited` (the services hold
such an event), naming the reference as the services do ("enterprise:E1"); every accepted event says what it
made known (`provided`, per cog), which is what releases the events held for it (`model.ChainModel`)."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import urlsplit

from fivecogs_ops.simulate.figures import Row
from fivecogs_shared.contracts import partner
from fivecogs_shared.contracts.partner import DEFAULT_DISTRIBUTION_POLICY, DistributionShares
from fivecogs_shared.contracts.topics import source_partner
from fivecogs_shared.money import round_half_up

ZERO = Decimal("0.00")


class Refused(Exception):
    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.reason = f"rule:{rule}"


class Awaited(Refused):
    """Refused for now: what the event refers to (`awaits`) is not applied yet. The event is held, applied when the
    reference is, and refused with this rule only if its wait expires."""

    def __init__(self, rule: str, awaits: str) -> None:
        super().__init__(rule)
        self.awaits = awaits


# The cogs that hold events, and what each learns from an accepted event of another (their references).
INPUTS, KNOWLEDGE, MARKETING = "inputs", "knowledge", "marketing"


@dataclass
class Enterprise:
    province: str
    sector: str
    households: int


@dataclass
class OpenBatch:
    """A batch as inputs sees it: deliveries until it is produced."""

    enterprise_id: str
    deliveries: dict[str, tuple[Decimal, bool]] = field(default_factory=dict)  # id -> (cost, local_source)
    produced: bool = False


@dataclass
class StockBatch:
    """A produced batch as marketing holds it: units for sale, and what they cost."""

    batch_id: str
    enterprise_id: str
    produced_on: date
    quantity: int
    cost: Decimal
    non_local_cost: Decimal
    sold: int = 0

    @property
    def left(self) -> int:
        return self.quantity - self.sold


@dataclass(frozen=True)
class Certificate:
    scheme: str
    level: int | None
    valid_from: date
    valid_until: date


@dataclass(frozen=True)
class Portion:
    batch: StockBatch
    quantity: int
    cost: Decimal
    non_local_cost: Decimal


@dataclass
class Line:
    enterprise_id: str
    quantity: int
    price: Decimal
    portions: list[Portion]


@dataclass
class Order:
    total: Decimal
    lines: list[Line]
    status: str = "open"  # open | cancelled | paid


@dataclass
class Ledger:
    """One province's figures, as management and communication accumulate them."""

    enterprises: set[str] = field(default_factory=set)
    active: set[str] = field(default_factory=set)
    revenue: Decimal = ZERO
    cost: Decimal = ZERO
    non_local_cost: Decimal = ZERO
    margins: list[tuple[Decimal, datetime]] = field(default_factory=list)  # positive margins, when settled
    notices: int = 0


@dataclass(frozen=True)
class PolicySet:
    effective_at: datetime  # the policy event's ce_time
    received: int  # arrival order: of two policies with one ce_time, the later received wins
    shares: DistributionShares


@dataclass
class ValueChain:
    enterprises: dict[str, Enterprise] = field(default_factory=dict)
    batches: dict[str, OpenBatch] = field(default_factory=dict)
    maker: dict[str, str] = field(default_factory=dict)  # product -> enterprise, from produced batches
    stock: dict[str, list[StockBatch]] = field(default_factory=dict)  # product -> its batches
    certificate_ids: set[str] = field(default_factory=set)
    certificates: dict[str, list[Certificate]] = field(default_factory=lambda: defaultdict(list))
    listings: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (product, channel) -> price
    orders: dict[str, Order] = field(default_factory=dict)
    policies: dict[str, list[PolicySet]] = field(default_factory=lambda: defaultdict(list))
    subscribers: dict[str, partner.SubscriptionCreated] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # subscriber -> the partner it belongs to
    ledgers: dict[str, Ledger] = field(default_factory=lambda: defaultdict(Ledger))
    # What the latest accepted event made known, per cog: `enterprise:E1` at inputs, knowledge and marketing...
    provided: list[tuple[str, str]] = field(default_factory=list)

    def _known(self, *known: tuple[str, str]) -> None:
        self.provided.extend(known)

    # --- inputs -----------------------------------------------------------------------------------------

    def register(self, e: partner.EnterpriseRegistered) -> None:
        known = self.enterprises.get(e.enterprise_id)
        if known and (known.province, known.sector) != (e.province, e.sector):
            raise Refused("enterprise_changed")
        self.enterprises[e.enterprise_id] = Enterprise(e.province, e.sector, e.target_poor_households)
        self.ledgers[e.province].enterprises.add(e.enterprise_id)
        ref = enterprise_ref(e.enterprise_id)
        self._known((INPUTS, ref), (KNOWLEDGE, ref), (MARKETING, ref))

    def deliver(self, d: partner.InputDelivered) -> None:
        batch = self._batch_for(d.batch_id, d.enterprise_id)
        if d.delivery_id in batch.deliveries:
            raise Refused("duplicate_delivery")
        batch.deliveries[d.delivery_id] = (d.cost_thb, d.local_source)
        self.batches[d.batch_id] = batch
        self._known((INPUTS, f"delivery:{d.batch_id}:{d.delivery_id}"))

    def produce(self, p: partner.BatchProduced) -> None:
        """A v2 batch that names its deliveries waits for each and costs exactly those; any other batch costs the
        deliveries received before it."""
        batch = self._batch_for(p.batch_id, p.enterprise_id)
        named = getattr(p, "delivery_ids", None)
        if named is not None:
            if set(batch.deliveries) - set(named):
                raise Refused("delivery_not_named")
            for delivery_id in named:
                if delivery_id not in batch.deliveries:
                    raise Awaited("missing_delivery", f"delivery:{p.batch_id}:{delivery_id}")
        if self.maker.get(p.product_id, p.enterprise_id) != p.enterprise_id:
            raise Refused("product_enterprise_mismatch")
        batch.produced = True
        self.batches[p.batch_id] = batch
        self.maker[p.product_id] = p.enterprise_id
        cost = sum((c for c, _ in batch.deliveries.values()), ZERO)
        non_local = sum((c for c, local in batch.deliveries.values() if not local), ZERO)
        stock = StockBatch(p.batch_id, p.enterprise_id, p.produced_on, p.quantity, cost, non_local)
        self.stock.setdefault(p.product_id, []).append(stock)
        made = product_ref(p.enterprise_id, p.product_id)
        self._known(
            (KNOWLEDGE, enterprise_ref(p.enterprise_id)),
            (KNOWLEDGE, made),
            (MARKETING, made),
            (MARKETING, f"stock:{p.product_id}"),
        )

    def _batch_for(self, batch_id: str, enterprise_id: str) -> OpenBatch:
        self._registered(enterprise_id)
        batch = self.batches.get(batch_id, OpenBatch(enterprise_id))
        if batch.enterprise_id != enterprise_id:
            raise Refused("batch_enterprise_mismatch")
        if batch.produced:
            raise Refused("batch_closed")
        return batch

    def _registered(self, enterprise_id: str) -> Enterprise:
        enterprise = self.enterprises.get(enterprise_id)
        if enterprise is None:
            raise Awaited("unknown_enterprise", enterprise_ref(enterprise_id))
        return enterprise

    # --- knowledge --------------------------------------------------------------------------------------

    def train(self, t: partner.TrainingCompleted) -> None:
        self._registered(t.enterprise_id)

    def certify(self, c: partner.CertificationGranted) -> None:
        enterprise = self._registered(c.enterprise_id)
        if self.maker.get(c.product_id) != c.enterprise_id:
            raise Awaited("unknown_product", product_ref(c.enterprise_id, c.product_id))
        if c.certificate_id in self.certificate_ids:
            raise Refused("duplicate_certificate")
        self.certificate_ids.add(c.certificate_id)
        self.certificates[c.product_id].append(Certificate(c.scheme, c.level, c.valid_from, c.valid_until))
        self._notify("certification", enterprise.province)
        self._known((MARKETING, f"certification:{c.product_id}"))

    # --- marketing --------------------------------------------------------------------------------------

    def list_product(self, request: partner.ListingRequested, at: datetime) -> None:
        enterprise = self._registered(request.enterprise_id)
        if not any(b.enterprise_id == request.enterprise_id for b in self.stock.get(request.product_id, [])):
            raise Awaited("unknown_product", product_ref(request.enterprise_id, request.product_id))
        if not self.may_list(request.product_id, enterprise, request.channel, at.astimezone(UTC).date()):
            # Re-checked at each certification of the product: one granted in time may still be on its way.
            raise Awaited("certification_required", f"certification:{request.product_id}")
        self.listings[(request.product_id, request.channel)] = request.unit_price_thb
        self._notify("listing", enterprise.province)
        self._known((MARKETING, f"listing:{request.channel}:{request.product_id}"))

    def may_list(self, product_id: str, enterprise: Enterprise, channel: str, day: date) -> bool:
        held = [c for c in self.certificates.get(product_id, []) if c.valid_from <= day <= c.valid_until]
        if channel in ("otop_trader", "online"):
            return bool(held)
        if channel == "retail":
            return any(c.scheme == "tcps" or (c.scheme == "otop_stars" and (c.level or 0) >= 4) for c in held)
        if channel == "tourism":
            return enterprise.sector == "community_tourism" and any(c.scheme == "cbt_standard" for c in held)
        return True  # local_market, pracharat_market

    def place(self, o: partner.OrderPlaced) -> Decimal:
        if o.order_id in self.orders:
            raise Refused("duplicate_order")
        for line in o.lines:
            self._check_line(line, o.channel)
        lines = [self._take(line) for line in o.lines]
        total = sum((line.price * line.quantity for line in lines), ZERO)
        self.orders[o.order_id] = Order(total, lines)
        self._known((MARKETING, order_ref(o.order_id)))
        return total

    def _check_line(self, line: partner.OrderLine, channel: str) -> None:
        if line.product_id not in self.stock:
            raise Awaited("unknown_product", f"stock:{line.product_id}")
        price = self.listings.get((line.product_id, channel))
        if price is None:
            raise Awaited("not_listed", f"listing:{channel}:{line.product_id}")
        if line.unit_price_thb != price:
            raise Refused("price_mismatch")
        if sum(b.left for b in self.stock[line.product_id]) < line.quantity:
            raise Refused("insufficient_stock")

    def _take(self, line: partner.OrderLine) -> Line:
        """First in, first out: the oldest batch (by production day, then batch id) is sold first."""
        wanted, portions = line.quantity, []
        for batch in sorted(self.stock[line.product_id], key=lambda b: (b.produced_on, b.batch_id)):
            taken = min(wanted, batch.left)
            if taken == 0:
                continue
            batch.sold += taken
            wanted -= taken
            cost = round_half_up(batch.cost * taken / batch.quantity)
            non_local = round_half_up(batch.non_local_cost * taken / batch.quantity)
            portions.append(Portion(batch, taken, cost, non_local))
        enterprise_id = self.maker[line.product_id]
        return Line(enterprise_id, line.quantity, line.unit_price_thb, portions)

    def cancel(self, c: partner.OrderCancelled) -> None:
        order = self._order(c.order_id)
        if order.status == "paid":
            raise Refused("already_settled")
        if order.status == "cancelled":
            raise Refused("order_not_open")
        order.status = "cancelled"
        for line in order.lines:
            for portion in line.portions:
                portion.batch.sold -= portion.quantity

    def pay(self, p: partner.PaymentReceived, at: datetime) -> None:
        order = self._order(p.order_id)
        if order.status == "cancelled":
            raise Refused("order_not_open")
        if order.status == "paid":
            raise Refused("already_settled")
        if p.amount_thb != order.total:
            raise Refused("amount_mismatch")
        order.status = "paid"
        for enterprise_id in sorted({line.enterprise_id for line in order.lines}):
            self._settle(enterprise_id, [line for line in order.lines if line.enterprise_id == enterprise_id], at)

    def _order(self, order_id: str) -> Order:
        # A rejected order leaves nothing behind: it is as unknown as one never placed, and may still come.
        order = self.orders.get(order_id)
        if order is None:
            raise Awaited("unknown_order", order_ref(order_id))
        return order

    # --- management and communication -------------------------------------------------------------------

    def _settle(self, enterprise_id: str, lines: list[Line], settled_at: datetime) -> None:
        province = self.enterprises[enterprise_id].province
        revenue = sum((line.price * line.quantity for line in lines), ZERO)
        cost = sum((p.cost for line in lines for p in line.portions), ZERO)
        non_local = sum((p.non_local_cost for line in lines for p in line.portions), ZERO)
        ledger = self.ledgers[province]
        ledger.active.add(enterprise_id)
        ledger.revenue += revenue
        ledger.cost += cost
        ledger.non_local_cost += non_local
        self._notify("sale", province)
        margin = revenue - cost
        if margin > 0:
            # Shared by the policy in force at the payment's ce_time, whenever that policy is received: the
            # report reads the shares when it is made (`_row`).
            ledger.margins.append((margin, settled_at))
            self._notify("distribution", province)

    def policy_at(self, province: str, moment: datetime) -> DistributionShares:
        """The policy of the province in force at a moment: the latest to take effect by then (its ce_time), of two
        at the same moment the later received; the programme default before any."""
        in_force = [p for p in self.policies.get(province, []) if p.effective_at <= moment]
        if not in_force:
            return DEFAULT_DISTRIBUTION_POLICY
        return max(in_force, key=lambda p: (p.effective_at, p.received)).shares

    def set_policy(self, p: partner.DistributionPolicySet, at: datetime) -> None:
        shares = DistributionShares(p.members_share, p.community_fund_share, p.reinvest_share)
        received = sum(len(history) for history in self.policies.values())
        self.policies[p.province].append(PolicySet(at, received, shares))

    def subscribe(self, s: partner.SubscriptionCreated, source: str) -> None:
        owner = source_partner(source) or source
        if self.owners.get(s.subscriber_id, owner) != owner:
            raise Refused("subscription_owned")
        if s.webhook_url is not None and not public_webhook(str(s.webhook_url)):
            raise Refused("webhook_destination")
        self.subscribers[s.subscriber_id] = s
        self.owners[s.subscriber_id] = owner

    def _notify(self, topic: str, province: str) -> None:
        self.ledgers[province].notices += sum(
            1 for s in self.subscribers.values() if topic in s.topics and (not s.provinces or province in s.provinces)
        )

    # --- the report -------------------------------------------------------------------------------------

    def province_rows(self) -> dict[str, Row]:
        return {province: self._row(province, ledger) for province, ledger in sorted(self.ledgers.items())}

    def _row(self, province: str, ledger: Ledger) -> Row:
        members = community_fund = reinvest = ZERO
        for margin, settled_at in ledger.margins:
            policy = self.policy_at(province, settled_at)
            to_members = round_half_up(margin * policy.members_share)
            # Two roundings up could hand out more than a one-satang margin: the fund never goes negative.
            to_reinvest = min(round_half_up(margin * policy.reinvest_share), margin - to_members)
            members += to_members
            reinvest += to_reinvest
            community_fund += margin - to_members - to_reinvest  # the rounding remainder stays in the community
        return Row(
            enterprises=len(ledger.enterprises),
            active_enterprises=len(ledger.active),
            revenue_thb=ledger.revenue,
            cost_thb=ledger.cost,
            margin_thb=ledger.revenue - ledger.cost,
            members_income_thb=members,
            community_fund_thb=community_fund,
            reinvest_thb=reinvest,
            local_value_thb=ledger.revenue - ledger.non_local_cost,
            target_poor_households_reached=sum(self.enterprises[e].households for e in ledger.active),
            notices=ledger.notices,
        )


def enterprise_ref(enterprise_id: str) -> str:
    return f"enterprise:{enterprise_id}"


def product_ref(enterprise_id: str, product_id: str) -> str:
    """A product as made by one enterprise: what its certifications and listings wait for."""
    return f"product:{enterprise_id}:{product_id}"


def order_ref(order_id: str) -> str:
    return f"order:{order_id}"


def public_webhook(url: str) -> bool:
    """docs/rules.md's destination rule, offline: no userinfo, and an IP-literal host that is globally routable
    (an IPv4-mapped one judged as its IPv4 address). A host name would need DNS, which this model does not
    consult: it takes names as public. The scenario writes literal addresses only; names come from the topic's
    history (tests' subscriptions, in provinces of their own), where no figure of the report depends on them."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return False
    try:
        address = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast
