"""The chain: all five services running (fresh groups and schemas), complete chains played at steady rates, and
the latency from the publish of each chain's last partner event (its payment) to management's distribution.made
for it (matched by the order id in its settlement id). Each chain is a new enterprise's registration, a delivery,
the batch made from it, a certification, a listing and an order, all at once; its payment follows LEAD_SECONDS
later, when the chain ahead of it has had time to travel through inputs, knowledge and marketing.

A rate is sustained when the five groups' lag at the end of its step is not higher than at its middle (give or
take one second of its partner records: lag is sampled between batches) and the backlog (lag, and every
distribution of the step) is drained within DRAIN_SECONDS after it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from fivecogs_ops import partners
from fivecogs_ops.bench import drain, fresh, workloads
from fivecogs_ops.bench.context import Bench
from fivecogs_ops.bench.records import Record, Writer
from fivecogs_ops.bench.results import ChainResult, ChainStep
from fivecogs_shared.contracts import COGS, events_topic, internal_type
from fivecogs_shared.provinces import TARGET_PROVINCES

LEAD_SECONDS = 2.0
PARTNER_RECORDS = 7  # a chain's partner events: registration, delivery, batch, certification, listing, order, payment
DRAIN_SECONDS = 10.0
SETTLE_SECONDS = 60.0  # then SETTLE_RATE chains a second: every chain's distribution must have arrived by then
SETTLE_RATE = 10.0
REPORT_SECONDS = 5.0
DISTRIBUTION = internal_type("management", "distribution.made")
CHAIN_COGS = ("inputs", "knowledge", "marketing")  # the cogs a chain's partner writes to
PROVINCES = sorted(TARGET_PROVINCES)


@dataclass
class Chain:
    order_id: str
    setup: list[Record]
    payment: Record


@dataclass
class Timings:
    """When each chain's payment was published and its distribution made (Kafka CreateTime, ms)."""

    paid: dict[str, int] = field(default_factory=dict)
    distributed: dict[str, int] = field(default_factory=dict)

    def latencies(self, orders: list[str]) -> list[float]:
        return [self.distributed[o] - self.paid[o] for o in orders if o in self.distributed and o in self.paid]


def build_chain(writer: Writer, number: int) -> Chain:
    firm = workloads.Enterprise(writer.next_id("e"), PROVINCES[number % len(PROVINCES)])
    batch_id, delivery_id, product_id = writer.next_id("b"), writer.next_id("d"), f"{firm.enterprise_id}-rice"
    order_id = writer.next_id("o")
    setup = [
        writer.partner_event("th.fivecogs.enterprise.registered.v1", firm.registration()),
        writer.partner_event("th.fivecogs.input.delivered.v1", workloads.delivery_data(delivery_id, batch_id, firm)),
        writer.partner_event("th.fivecogs.batch.produced.v2", workloads.production_data(batch_id, firm, [delivery_id])),
        writer.partner_event(
            "th.fivecogs.certification.granted.v1", workloads.certificate_data(writer, firm, product_id)
        ),
        writer.partner_event("th.fivecogs.listing.requested.v1", workloads.listing_data(writer, firm, product_id)),
        writer.partner_event("th.fivecogs.order.placed.v1", workloads.order_data(order_id, [product_id])),
    ]
    amount = str(workloads.PRICE)
    payment = {"payment_id": writer.next_id("pay"), "order_id": order_id, "amount_thb": amount}
    return Chain(order_id, setup, writer.partner_event("th.fivecogs.payment.received.v1", payment))


async def chain(bench: Bench, rates: tuple[int, ...], step_seconds: float) -> ChainResult:
    stages: dict[str, fresh.Stage] = {cog: fresh.Stage(cog, "chain", bench.run) for cog in COGS}
    result = ChainResult()
    try:
        partner = await _prepare(bench, stages)
        names = list(COGS)
        for cog in names:
            bench.processes.start(cog, extra_env=stages[cog].env())
        await asyncio.to_thread(bench.processes.wait_ready, names, drain.READY_SECONDS)
        bench.say("chain: all five services ready")
        async with Tap(bench) as tap:
            player = Player(bench, partner, stages, tap.timings)
            await player.play_steps(rates, step_seconds, result)
            result.problems += await player.settle()
    except (RuntimeError, TimeoutError) as error:
        result.problems.append(str(error))
    finally:
        for cog in COGS:
            bench.processes.stop(cog)
    return result


async def _prepare(bench: Bench, stages: dict[str, fresh.Stage]) -> partners.PartnerAccess:
    """One partner writing the three cogs a chain starts in; each service's group pinned at the ends."""
    admin = bench.cluster.admin
    access = await partners.add(admin, stages["inputs"].partner, list(CHAIN_COGS))
    await fresh.ensure_shared_topics(admin)
    for stage in stages.values():
        await fresh.pin_group(admin, stage.group, await fresh.subscribed(admin, stage.cog))
    return access


class Tap:
    """Reads management's events topic from its current end: the distribution of each chain, by order id."""

    def __init__(self, bench: Bench) -> None:
        self.consumer = AIOKafkaConsumer(**bench.cluster.admin.client(), enable_auto_commit=False, fetch_max_wait_ms=50)
        self.timings = Timings()
        self.topic = events_topic("management")
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Tap:
        await self.consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in sorted(await self._partitions())]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:
            await self.consumer.position(tp)  # pinned now: nothing published after this is missed
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()

    async def _partitions(self) -> set[int]:
        await self.consumer._client.set_topics([self.topic])  # aiokafka has no public call for it
        return self.consumer.partitions_for_topic(self.topic) or set()

    async def _collect(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if dict(record.headers).get("ce_type") == DISTRIBUTION.encode() and record.value:
                        settlement = json.loads(record.value)["settlement_id"]
                        self.timings.distributed[settlement.split(":", 1)[0]] = record.timestamp


class Player:
    def __init__(
        self, bench: Bench, partner: partners.PartnerAccess, stages: dict[str, fresh.Stage], timings: Timings
    ) -> None:
        self.bench, self.partner, self.stages, self.timings = bench, partner, stages, timings
        self.writer = Writer(stages["inputs"].tag, stages["inputs"].partner)
        self.played: list[str] = []
        self.problems: list[str] = []
        self.partitions: dict[str, list[TopicPartition]] = {}

    async def play_steps(self, rates: tuple[int, ...], seconds: float, result: ChainResult) -> None:
        """The rates in increasing order until one is not sustained; then half the highest, if not played."""
        for cog, stage in self.stages.items():
            self.partitions[cog] = await fresh.subscribed(self.bench.cluster.admin, stage.cog)
        for rate in sorted(rates):
            step = await self.step(rate, seconds)
            result.steps.append(step)
            if not step.sustained:
                break
        highest = result.highest_sustained
        if highest and highest // 2 >= 1 and highest // 2 not in {s.rate for s in result.steps}:
            result.steps.append(await self.step(highest // 2, seconds))
        result.steps.sort(key=lambda s: s.rate)

    async def step(self, rate: int, seconds: float) -> ChainStep:
        count = max(1, round(rate * seconds))
        chains = [build_chain(self.writer, n) for n in range(count)]
        self.bench.say(f"chain: {rate} chains/s for {seconds:.0f}s ({count:,} chains)")
        mid_lag = await self._play(chains, rate, seconds)
        end_lag = await self.lag()
        orders = [c.order_id for c in chains]
        self.played += orders
        drained = await self._drained(orders, DRAIN_SECONDS)
        if not drained:  # the next step must start on an empty chain, or its latencies are this step's backlog
            self.problems += await self._settle(orders)
        latencies = sorted(self.timings.latencies(orders))
        # Lag is sampled between batches: give or take one second of the step's partner records.
        steady = end_lag <= mid_lag + rate * PARTNER_RECORDS
        step = ChainStep(rate, count, *_percentiles(latencies), sustained=drained and steady)
        self.bench.say(
            f"chain: {rate}/s lag {mid_lag:,} at the middle, {end_lag:,} at the end; "
            f"{'drained' if drained else 'not drained'} within {DRAIN_SECONDS:.0f}s; p99 {_ms(step.p99_ms)}"
        )
        return step

    async def _play(self, chains: list[Chain], rate: int, seconds: float) -> int:
        """Publish each chain's setup at its moment and its payment LEAD_SECONDS later; returns the lag at the
        middle of the step."""
        producer = AIOKafkaProducer(**self.partner.access.client(), acks="all", enable_idempotence=True)
        await producer.start()
        try:
            began, mid_lag, pending = time.monotonic(), -1, []
            for number, chain in enumerate(chains):
                await _until(began + number / rate)
                pending += [await _send(producer, r) for r in chain.setup]
                pending.append(asyncio.create_task(self._pay_later(producer, chain, began + number / rate)))
                if mid_lag < 0 and time.monotonic() - began >= seconds / 2:
                    mid_lag = await self.lag()
            await asyncio.gather(*pending)
        finally:
            await producer.stop()
        return max(mid_lag, 0)

    async def _pay_later(self, producer: AIOKafkaProducer, chain: Chain, at: float) -> None:
        await _until(at + LEAD_SECONDS)
        metadata = await (await _send(producer, chain.payment))
        self.timings.paid[chain.order_id] = metadata.timestamp

    async def lag(self) -> int:
        lags = [self.bench.probe.lag(s.group, self.partitions[cog]) for cog, s in self.stages.items()]
        return sum(await asyncio.gather(*lags))

    async def _drained(self, orders: list[str], within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(o in self.timings.distributed for o in orders) and await self.lag() == 0:
                return True
            await asyncio.sleep(0.2)
        return False

    async def settle(self) -> list[str]:
        """Every chain played must end in its distribution, whatever the rate did to its latency."""
        return self.problems + await self._settle(self.played)

    async def _settle(self, orders: list[str]) -> list[str]:
        within = SETTLE_SECONDS + len(orders) / SETTLE_RATE
        began = time.monotonic()
        while time.monotonic() - began < within:
            if await self._drained(orders, REPORT_SECONDS):
                return []
            missing = sum(1 for o in orders if o not in self.timings.distributed)
            self.bench.say(f"chain: catching up, {missing:,} chains to distribute, {await self.lag():,} records behind")
        missing = sum(1 for o in orders if o not in self.timings.distributed)
        return [f"{missing} of {len(orders)} chains without a distribution after {within:.0f}s"] if missing else []


async def _send(producer: AIOKafkaProducer, record: Record) -> Any:
    return await producer.send(record.topic, record.value, key=record.key, headers=list(record.headers))


async def _until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def _percentiles(latencies: list[float]) -> tuple[float | None, float | None, float | None]:
    if not latencies:
        return None, None, None
    if len(latencies) == 1:
        return latencies[0], latencies[0], latencies[0]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return statistics.median(latencies), cuts[94], cuts[98]


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"
