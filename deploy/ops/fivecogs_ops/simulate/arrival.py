"""In which order the scenario's partner records reach fivecogs: as written (`ordered`), or shuffled (`shuffled`).

**ordered** (the default): step by step, each step in as few waves as keep one partner's record after another
partner's record with the same key (`play.waves`); the chain catches up after each wave. Nothing ever arrives
before what it refers to, so only the scenario's deliberate dangling references are held (and expire).

**shuffled**: the records are cut into *blocks*, and each block is published as a seeded random merge of its
records, in which a record may arrive before what it refers to, and is then held until that arrives:

- *Blocks.* The records in their written order (the steps, poison twins included) are cut at the middle of each
  step, so that every boundary between two steps lies inside a block: an enterprise's registration with its
  deliveries and batches, batches with their certifications, certifications with their listings, listings with
  their orders, orders with their payments. A block holds at most `block` records: a long step is cut again
  around its boundaries, and short neighbouring pieces are put together (with a small scenario, a block spans
  several steps: a listing may then come before its batch). A record's references were written before it, so
  they are in its block or an earlier one: a record can only ever wait for something of its own block, and
  how long it waits is bounded by a block's publishing and catching up, whatever the size of the run.
- *The merge.* Within a block, the next record is drawn at random among those whose predecessors are out,
  weighted by what is left of its topic times the topic's pace, drawn for the block: every topic spreads over
  the block, a fast one ahead of a slow one (a market's orders ahead of an office's listings, an office's
  batches behind a certifier's certifications). Each topic's own records keep their order (Kafka orders a
  partition), and so do the pairs below.
- *Waves.* A block is then played in as few waves as keep those pairs in order across partitions: a record goes
  a wave after whatever it must follow that sits on another topic or key (Kafka orders a partition only), and
  the chain catches up between waves. It also goes a wave after everything its predecessor refers to: the
  predecessor may be held for that, and must be applied, not merely received, first (unless the record follows
  it on its partition and needs all the predecessor needs: it is then held as long, and let go after it). The
  merge is spread over the waves, its first records in the first wave and its last in the last, each record
  moved only as far as the pairs need, and no more than `AHEAD` (2) waves before what it refers to where the
  pairs allow: a record is held for a wave or two, seconds, well within the services' hold (`simulate.holds`).

The pairs kept in order are those where the documented rules decide by arrival, not by what a hold covers:

- the registrations of one enterprise (the latest registration's figures count);
- the records of one batch, except that a v2 batch naming its deliveries (`delivery_ids`) may come before
  them: a delivery before a batch that does not name it (v1, or v2 without `delivery_ids`) would arrive after
  it and be `batch_closed`, one after it (`batch_closed` on purpose) would be taken in;
- every subscription before the events that publish notices (certifications, listings, payments): subscribers
  only hear of events processed after they subscribed; and the subscriptions of one subscriber id (the first
  is its owner's, the latest wins);
- the listings of one product on one channel (the latest price wins), and a listing that replaces a price
  before the orders of that product on that channel (an order must match the listing in force when received);
- orders and cancellations that share a product, a wave apart (stock is first come, first served: an order
  takes the units received before it, a cancellation gives them back; orders of other products do not meet,
  and may pass each other); every batch of a product before its orders (which batches an order takes, and at
  what cost, depends on the batches there);
- payments and cancellations of one order (the first received decides);
- the batches of one product by different enterprises (the product is made by the enterprise whose batch came
  first).

Everything else may come in any order, and does: deliveries (and trainings) before their enterprise, a batch
before its named deliveries, a certification or a listing before its batch, a listing before the certification
it needs, an order before its listing, a payment before its order (one the bank reports: one through the market
follows the order on the market's topic).
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Literal, TypeVar, get_args

from fivecogs_ops.simulate.intake import Reading, read
from fivecogs_ops.simulate.play import waves
from fivecogs_ops.simulate.records import Sent
from fivecogs_shared.contracts import partner

Arrival = Literal["ordered", "shuffled"]
ORDERED: Arrival = "ordered"
SHUFFLED: Arrival = "shuffled"
ARRIVALS: tuple[Arrival, ...] = get_args(Arrival)
BLOCK_RECORDS = 300  # records per block: what a record may arrive ahead of, and so at most how long it waits
PACE = 1.5  # a topic's pace in a block is e^u, u uniform in [-PACE, PACE]: up to 4.5 times faster or slower
# A record goes out at most this many waves before what it refers to, where the kept pairs allow it: each wave
# is caught up before the next, so this bounds how long it is held (found in a few rounds of placing the block).
AHEAD, AHEAD_ROUNDS = 2, 8

Steps = Sequence[tuple[str, Sequence[Sent]]]  # (name, records in written order)


@dataclass(frozen=True)
class Stage:
    """A step (ordered) or a block (shuffled), in waves: records in publishing order, the chain caught up after
    each wave."""

    name: str
    waves: tuple[tuple[Sent, ...], ...]

    def __len__(self) -> int:
        return sum(len(wave) for wave in self.waves)

    def named_waves(self) -> list[tuple[str, tuple[Sent, ...]]]:
        if len(self.waves) == 1:
            return [(self.name, self.waves[0])]
        return [(f"{self.name} ({i}/{len(self.waves)})", wave) for i, wave in enumerate(self.waves, 1)]


REGISTERED = "th.fivecogs.enterprise.registered.v1"
DELIVERED = "th.fivecogs.input.delivered.v1"
PRODUCED = ("th.fivecogs.batch.produced.v1", "th.fivecogs.batch.produced.v2")
TRAINED = "th.fivecogs.training.completed.v1"
CERTIFIED = "th.fivecogs.certification.granted.v1"
LISTED = "th.fivecogs.listing.requested.v1"
PLACED = "th.fivecogs.order.placed.v1"
CANCELLED = "th.fivecogs.order.cancelled.v1"
PAID = "th.fivecogs.payment.received.v1"
SUBSCRIBED = "th.fivecogs.subscription.created.v1"
NOTICED = (CERTIFIED, LISTED, PAID)  # their effects are announced to subscribers
UNCERTIFIED_CHANNELS = ("local_market", "pracharat_market")  # a listing there needs no certification
K = TypeVar("K", bound=Hashable)


def arrange(steps: Steps, arrival: Arrival, seed: int, block: int = BLOCK_RECORDS) -> list[Stage]:
    if arrival == ORDERED:
        return ordered(steps)
    if arrival == SHUFFLED:
        return shuffled(steps, seed, block)
    raise ValueError(f"arrival must be one of {', '.join(ARRIVALS)}, not {arrival!r}")


def ordered(steps: Steps) -> list[Stage]:
    """Each step in as few waves as keep one partner's record after another's with the same key."""
    return [Stage(name, tuple(tuple(wave) for wave in waves(list(records)))) for name, records in steps]


def shuffled(steps: Steps, seed: int, block: int = BLOCK_RECORDS) -> list[Stage]:
    """The records of `steps`, shuffled block by block as the module says; the same seed, the same waves."""
    if block < 2:
        raise ValueError("a block holds at least two records")
    records = [sent for _, step in steps for sent in step]
    order = Precedence(records)
    rng = random.Random(f"arrival-{seed}")
    blocks = cut(steps, block)
    stages = []
    for number, (start, end) in enumerate(blocks, 1):
        parts = order.waves(order.merge(range(start, end), rng))
        name = f"block {number}/{len(blocks)} ({_span(steps, start, end)})"
        stages.append(Stage(name, tuple(tuple(records[at] for at in part) for part in parts)))
    return stages


def cut(steps: Steps, block: int) -> list[tuple[int, int]]:
    """Blocks as (start, end) positions: cut at the middle of every step, each boundary between two steps then
    inside a block; a piece longer than `block` cut again around its boundary; neighbours joined up to `block`."""
    starts, position = [], 0
    for _, records in steps:
        starts.append(position)
        position += len(records)
    total = position
    middles = [start + len(records) // 2 for start, (_, records) in zip(starts, steps, strict=True)]
    edges = sorted({0, *middles, total})
    pieces: list[tuple[int, int]] = []
    for low, high in itertools.pairwise(edges):
        if high == low:
            continue
        boundary = next((s for s in starts[1:] if low < s < high), None)
        if high - low <= block or boundary is None:
            pieces += _chunks(low, high, block)
            continue
        around = (max(low, boundary - block // 2), min(high, boundary + block // 2))
        pieces += [*_chunks(low, around[0], block), around, *_chunks(around[1], high, block)]
    joined: list[tuple[int, int]] = []
    for low, high in pieces:
        if joined and high - joined[-1][0] <= block:
            joined[-1] = (joined[-1][0], high)
        else:
            joined.append((low, high))
    return joined


def _chunks(low: int, high: int, block: int) -> list[tuple[int, int]]:
    if high <= low:
        return []
    count = -(-(high - low) // block)
    size = -(-(high - low) // count)
    return [(at, min(high, at + size)) for at in range(low, high, size)]


def _span(steps: Steps, start: int, end: int) -> str:
    """Which steps a block covers, by their numbers: "steps 2-3"."""
    numbers, position = [], 0
    for name, records in steps:
        if position < end and position + len(records) > start:
            numbers.append(name.split()[0])
        position += len(records)
    return f"step {numbers[0]}" if len(numbers) == 1 else f"steps {numbers[0]}-{numbers[-1]}"


@dataclass(frozen=True)
class _Event:
    at: int
    sent: Sent
    reading: Reading

    @property
    def ce_type(self) -> str:
        return self.reading.ce_type

    def field(self, name: str) -> str:
        return str(getattr(self.reading.data, name, "") or "")

    @property
    def named(self) -> tuple[str, ...]:
        """The deliveries a v2 batch names (none for any other record)."""
        return tuple(getattr(self.reading.data, "delivery_ids", None) or ())

    @property
    def lines(self) -> list[partner.OrderLine]:
        data = self.reading.data
        return list(data.lines) if isinstance(data, partner.OrderPlaced) else []


class Precedence:
    """Which records must follow which, over the records in their written order (positions index them)."""

    def __init__(self, records: Sequence[Sent]) -> None:
        self.records = list(records)
        self.events: dict[int, _Event] = {}
        for at, sent in enumerate(self.records):
            reading = read(sent)
            if isinstance(reading, Reading):  # a dead letter has no effect: only its topic's order matters
                self.events[at] = _Event(at, sent, reading)
        self.registrations = self._index((REGISTERED,), lambda e: e.field("enterprise_id"))
        self.deliveries = self._index((DELIVERED,), lambda e: (e.field("batch_id"), e.field("delivery_id")))
        self.produced = self._index(PRODUCED, lambda e: e.field("product_id"))
        self.certified = self._index((CERTIFIED,), lambda e: e.field("product_id"))
        self.listed = self._index((LISTED,), lambda e: (e.field("product_id"), e.field("channel")))
        self.placed = self._index((PLACED,), lambda e: e.field("order_id"))
        self.refers = {at: set(self._references(event)) for at, event in self.events.items()}
        self._closures: dict[int, frozenset[int]] = {}
        # y -> the records y must be applied after: the pairs kept in order, and all the first refers to
        self.after: dict[int, set[int]] = defaultdict(set)
        for before, later in self._kept():
            self.after[later].add(before)
            if not self._waits_alike(before, later):
                self.after[later] |= self.referred(before)
        # y -> the record y is merely published after: the previous one of its topic
        self.behind: dict[int, set[int]] = defaultdict(set)
        last: dict[str, int] = {}
        for at, sent in enumerate(self.records):
            if sent.topic in last:
                self.behind[at].add(last[sent.topic])
            last[sent.topic] = at

    def _of(self, *types: str) -> list[_Event]:
        return [event for event in self.events.values() if event.ce_type in types]

    def _index(self, types: tuple[str, ...], key: Callable[[_Event], K]) -> dict[K, list[int]]:
        found: dict[K, list[int]] = defaultdict(list)
        for event in self._of(*types):
            found[key(event)].append(event.at)
        return found

    # -- what a record refers to: what it may be held for --------------------------------------------------

    def _references(self, event: _Event) -> Iterator[int]:
        enterprise, product = event.field("enterprise_id"), event.field("product_id")
        found: list[int] = []
        if event.ce_type in (DELIVERED, *PRODUCED, TRAINED, CERTIFIED, LISTED):
            found += self.registrations.get(enterprise, [])
        if event.ce_type in PRODUCED:
            for delivery_id in event.named:
                found += self.deliveries.get((event.field("batch_id"), delivery_id), [])
        if event.ce_type in (CERTIFIED, LISTED):
            found += [at for at in self.produced.get(product, []) if self._maker(at) == enterprise]
        if event.ce_type == LISTED:
            found += self.certified.get(product, [])
        for line in event.lines:
            found += self.produced.get(line.product_id, [])
            found += self.listed.get((line.product_id, event.field("channel")), [])
        if event.ce_type in (CANCELLED, PAID):
            found += self.placed.get(event.field("order_id"), [])
        return (at for at in found if at < event.at)  # what was written after it cannot be what it waits for

    def referred(self, at: int) -> frozenset[int]:
        """Everything the record refers to, what that refers to, and so on."""
        if at not in self._closures:
            found: set[int] = set()
            for reference in sorted(self.refers.get(at, ())):
                found |= {reference, *self.referred(reference)}
            self._closures[at] = frozenset(found)
        return self._closures[at]

    def _maker(self, at: int) -> str:
        return self.events[at].field("enterprise_id")

    def _waits_alike(self, before: int, later: int) -> bool:
        """Whether `later` cannot be taken in while `before` waits, whatever else arrives: it follows it on its
        partition and needs at least everything `before` needs (it then waits for the same things, and is let go
        after it, in arrival order). Else it must also follow all `before` refers to, not just `before`."""
        return self._same_partition(before, later) and _needs(self.events[before]) <= _needs(self.events[later])

    # -- the pairs kept in order ---------------------------------------------------------------------------

    def _kept(self) -> Iterator[tuple[int, int]]:
        yield from _chained(self.registrations.values())
        yield from self._batches()
        yield from self._subscriptions()
        yield from _chained(self.listed.values())
        yield from self._replaced_prices()
        yield from self._stock()
        yield from _chained(self._index((CANCELLED, PAID), lambda e: e.field("order_id")).values())
        yield from self._makers()

    def _batches(self) -> Iterator[tuple[int, int]]:
        """The records of one batch in order, but a batch naming its deliveries free of those deliveries."""
        for positions in self._index((DELIVERED, *PRODUCED), lambda e: e.field("batch_id")).values():
            naming = next((at for at in positions if self.events[at].ce_type in PRODUCED), None)
            named = set(self.events[naming].named) if naming is not None else set()
            for i, later in enumerate(positions):
                for before in positions[:i]:
                    if not (later == naming and self.events[before].field("delivery_id") in named):
                        yield before, later

    def _subscriptions(self) -> Iterator[tuple[int, int]]:
        """Each subscriber's subscriptions in order, and all of them before the events that publish notices."""
        subscribers = self._index((SUBSCRIBED,), lambda e: e.field("subscriber_id"))
        yield from _chained(subscribers.values())
        subscriptions = sorted(at for positions in subscribers.values() for at in positions)
        for event in self._of(*NOTICED):
            yield from ((at, event.at) for at in subscriptions if at < event.at)

    def _replaced_prices(self) -> Iterator[tuple[int, int]]:
        orders = self._of(PLACED)
        for (product, channel), listings in self.listed.items():
            for replacing in listings[1:]:
                later = (
                    o.at
                    for o in orders
                    if o.at > replacing
                    and o.field("channel") == channel
                    and any(line.product_id == product for line in o.lines)
                )
                first = next(later, None)
                if first is not None:
                    yield replacing, first

    def _stock(self) -> Iterator[tuple[int, int]]:
        """Orders and cancellations sharing a product in order, after every batch of it."""
        by_product: dict[str, list[int]] = defaultdict(list)
        for event in self._of(PLACED, CANCELLED):
            for product in sorted(self._products(event)):
                by_product[product].append(event.at)
        yield from _chained(by_product.values())
        for product, positions in by_product.items():
            yield from ((batch, positions[0]) for batch in self.produced.get(product, []) if batch < positions[0])

    def _products(self, event: _Event) -> set[str]:
        if event.ce_type == PLACED:
            return {line.product_id for line in event.lines}
        placed = [at for at in self.placed.get(event.field("order_id"), []) if at < event.at]
        return {line.product_id for at in placed for line in self.events[at].lines}

    def _makers(self) -> Iterator[tuple[int, int]]:
        for positions in self.produced.values():
            for i, later in enumerate(positions):
                for before in positions[:i]:
                    if self._maker(before) != self._maker(later):
                        yield before, later

    # -- arranging a block ---------------------------------------------------------------------------------

    def merge(self, block: range, rng: random.Random) -> list[int]:
        """A random order of the block in which everything comes after what it must follow."""
        inside = set(block)
        waiting = {at: (self.after.get(at, set()) | self.behind.get(at, set())) & inside for at in block}
        followers: dict[int, list[int]] = defaultdict(list)
        for at, before in waiting.items():
            for predecessor in before:
                followers[predecessor].append(at)
        merged: list[int] = []
        ready = sorted(at for at, before in waiting.items() if not before)
        left = Counter(self.records[at].topic for at in block)
        pace = {topic: math.exp(rng.uniform(-PACE, PACE)) for topic in sorted(left)}
        while ready:
            # Each topic by how much of it is left (every topic spreads over the block, as in a random interleaving
            # of the topics, rather than the small ones all coming first) times its pace in this block: a topic
            # drawn fast comes early, before what it refers to on a topic drawn slow.
            weights = [left[self.records[r].topic] * pace[self.records[r].topic] for r in ready]
            at = ready.pop(rng.choices(range(len(ready)), weights)[0])
            left[self.records[at].topic] -= 1
            merged.append(at)
            for follower in followers[at]:
                waiting[follower].discard(at)
                if not waiting[follower]:
                    ready.append(follower)
            ready.sort()
        assert len(merged) == len(inside), "the precedences form a cycle"
        return merged

    def waves(self, merged: list[int]) -> list[list[int]]:
        """The merged block in as few waves as keep every kept pair in order across partitions, each record as
        close to its place in the merge as those pairs allow (the merge's first records in the first wave, its
        last in the last), and no more than `AHEAD` waves before what it refers to, where the pairs allow."""
        inside = set(merged)
        before = {at: self._in_wave_order(at, inside) for at in merged}
        earliest: dict[int, int] = {}
        for at in merged:
            earliest[at] = max((earliest[b] + gap for b, gap in before[at]), default=0)
        count = max(earliest.values(), default=-1) + 1
        latest = dict.fromkeys(merged, count - 1)
        for at in reversed(merged):
            for b, gap in before[at]:
                latest[b] = min(latest[b], latest[at] - gap)
        floor = dict.fromkeys(merged, 0)
        for _ in range(AHEAD_ROUNDS):
            wave: dict[int, int] = {}
            for rank, at in enumerate(merged):
                low = max((wave[b] + gap for b, gap in before[at]), default=floor[at])
                wave[at] = min(max(low, floor[at], rank * count // len(merged)), latest[at])
            behind = {
                at: max(wave[r] for r in references) - AHEAD
                for at in merged
                if (references := self.refers.get(at, set()) & inside)
            }
            moved = {at: min(due, latest[at]) for at, due in behind.items() if due > floor[at] and wave[at] < due}
            if not moved:
                break
            floor |= moved
        parts: list[list[int]] = [[] for _ in range(count)]
        for at in merged:
            parts[wave[at]].append(at)
        return parts

    def _in_wave_order(self, at: int, inside: set[int]) -> list[tuple[int, int]]:
        """What the record follows in the block, each with the waves it must stay behind it: 0 on its own
        partition (Kafka keeps the order) or for its topic's previous record, 1 across partitions."""
        found = [(b, 0) for b in self.behind.get(at, ()) if b in inside]
        found += [(b, 0 if self._same_partition(b, at) else 1) for b in self.after.get(at, ()) if b in inside]
        return found

    def _same_partition(self, before: int, later: int) -> bool:
        one, other = self.records[before], self.records[later]
        return (one.topic, one.key) == (other.topic, other.key)


def _needs(event: _Event) -> frozenset[str]:
    """What must exist before the event can be taken in: what it is held for until then."""
    ce_type, enterprise, product = event.ce_type, event.field("enterprise_id"), event.field("product_id")
    needs: set[str] = set()
    if ce_type in (DELIVERED, *PRODUCED, TRAINED, CERTIFIED, LISTED):
        needs.add(f"enterprise:{enterprise}")
    if ce_type in PRODUCED:
        needs |= {f"delivery:{event.field('batch_id')}:{delivery}" for delivery in event.named}
    if ce_type in (CERTIFIED, LISTED):
        needs.add(f"product:{enterprise}:{product}")
    if ce_type == LISTED and event.field("channel") not in UNCERTIFIED_CHANNELS:
        needs.add(f"certification:{product}:{event.reading.time.astimezone(UTC).date()}")  # valid on that day
    for line in event.lines:
        needs |= {f"stock:{line.product_id}", f"listing:{event.field('channel')}:{line.product_id}"}
    if ce_type in (CANCELLED, PAID):
        needs.add(f"order:{event.field('order_id')}")
    return frozenset(needs)


def _chained(groups: Iterable[Sequence[int]]) -> Iterator[tuple[int, int]]:
    for positions in groups:
        yield from itertools.pairwise(positions)
