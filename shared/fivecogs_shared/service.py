"""Running one fivecogs service: topics, schema, the batch subscriber, the outbox relay and the HTTP server.

A service only declares what is its own (`ServiceDefinition`: handlers, upstream cogs, migrations, routes);
everything here is the same for all five.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import structlog
import uvicorn
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from fivecogs_shared import db, holding, kafka_admin, outbox
from fivecogs_shared.consumer import BatchProcessor, Handler, Source, Sources, StateFactory, is_transient, span
from fivecogs_shared.contracts import INTERNAL_EVENT_TYPES, PARTNER_EVENT_TYPES, dlq_topic, events_topic
from fivecogs_shared.fetching import guarded, waiting_only_for_records
from fivecogs_shared.http import BearerAuth, health_routes
from fivecogs_shared.lag import export_lag
from fivecogs_shared.logs import configure_logging, ensure_logging
from fivecogs_shared.metrics import ServiceMetrics
from fivecogs_shared.settings import ServiceSettings, load_settings

log = structlog.get_logger()


@dataclass(frozen=True)
class ServiceDefinition:
    cog: str
    handlers: Mapping[str, Handler]
    migrations: Path
    upstream: Sequence[str] = ()
    routes: Callable[[Runtime], list[BaseRoute]] = field(default=lambda runtime: [])
    # Long-running work of the service's own, beside consuming (e.g. delivering webhooks); cancelled on stop.
    background: Sequence[Callable[[Runtime], Coroutine[Any, Any, None]]] = ()
    # The service's aggregates for a batch, kept in memory and written set-wise (batchstate); None: SQL per event.
    state: StateFactory | None = None

    def sources(self) -> Sources:
        ingest = {t: e for t, e in PARTNER_EVENT_TYPES.items() if e.cog == self.cog}
        upstream = {}
        for cog in self.upstream:
            # Every internal type of the upstream cog is readable; those without a handler here are skipped.
            registry = {t: e for t, e in INTERNAL_EVENT_TYPES.items() if e.cog == cog}
            upstream[events_topic(cog)] = Source(events_topic(cog), registry)
        return Sources(self.cog, ingest, upstream)

    def topics(self) -> list[kafka_admin.TopicSpec]:
        """The topics this service may create: its own events, and the upstream ones with their dead letters.
        Partners' ingest, dead-letter and feedback topics come with the partner (`fivecogs partners add`)."""
        names = {events_topic(self.cog)}
        for topic in self.sources().upstream:
            names |= {topic, dlq_topic(topic)}
        # Each gets its kind's max.message.bytes (contracts.topics): *.dlq topics take more than what they copy.
        return [kafka_admin.TopicSpec(name) for name in sorted(names)]


class AssignmentTracker(ConsumerRebalanceListener):  # type: ignore[misc]
    """Which partitions this process owns now (readiness needs at least one); `on_revoked` hears what went."""

    def __init__(self, on_revoked: Callable[[list[tuple[str, int]]], None] = lambda partitions: None) -> None:
        self.assigned: set[TopicPartition] = set()
        self.joined = False  # the group has handed this member its share at least once (maybe none)
        self.on_revoked = on_revoked

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.assigned -= set(revoked)
        self.on_revoked([(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.assigned |= set(assigned)
        self.joined = True


@dataclass
class Runtime:
    """What a running service holds; HTTP routes and tests reach the service's state through it."""

    definition: ServiceDefinition
    settings: ServiceSettings
    pool: asyncpg.Pool
    broker: KafkaBroker
    relay: outbox.OutboxRelay
    processor: BatchProcessor
    metrics: ServiceMetrics
    assignment: AssignmentTracker


def build_broker(settings: ServiceSettings, metrics: ServiceMetrics) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka.bootstrap,
        security=settings.kafka.security(),
        client_id=f"fivecogs-{settings.cog}",
        allow_auto_create_topics=False,
        # A subscription by pattern sees a partner's new topic at the next metadata refresh: keep that short.
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
        middlewares=[KafkaPrometheusMiddleware(registry=metrics.registry, app_name=f"fivecogs-{settings.cog}")],
        # Through stdlib logging, as every library's lines (logs.py): JSON like ours, its noise given its level.
        logger=logging.getLogger("faststream"),
        graceful_timeout=GRACEFUL_SECONDS,
        # FastStream logs every batch received/processed (dropped by logs.DEMOTED: `batch applied` says more).
        log_level=logging.DEBUG,
    )


# SIGTERM to exit: consuming (the in-flight batch finishes and commits, or is cancelled and handed back
# uncommitted) gets GRACEFUL_SECONDS, the outbox relay's last flush the rest; orchestrators wait 10 s or more.
SHUTDOWN_SECONDS = 9.0
BACKGROUND_STOP_SECONDS = 2.0  # for the lag exporter and the like, out of SHUTDOWN_SECONDS
# How long one fetch waits for records before the consume loop looks again (and can see it is stopping).
BATCH_WAIT_MS = 200
GRACEFUL_SECONDS = 5.0
METADATA_MAX_AGE_MS = 5_000


@contextlib.asynccontextmanager
async def running(definition: ServiceDefinition, settings: ServiceSettings) -> AsyncIterator[Runtime]:
    """Start everything the service needs; on exit stop consuming, flush the outbox and close."""
    ensure_logging(f"fivecogs-{definition.cog}", settings.log_format, settings.log_level)
    await kafka_admin.ensure_topics(settings.kafka, definition.topics())
    pool = await db.create_pool(settings.database_url, settings.schema_name)
    applied = await db.migrate(pool, settings.schema_name, definition.migrations)
    if applied:
        log.info("migrations applied", migrations=applied)
    metrics = ServiceMetrics()
    broker = build_broker(settings, metrics)
    processor = BatchProcessor(
        cog=settings.cog,
        pool=pool,
        sources=definition.sources(),
        handlers=definition.handlers,
        metrics=metrics,
        group_id=settings.group_id,
        max_value_bytes=settings.max_value_bytes,
        stall_seconds=settings.stall_seconds,
        hold_seconds=settings.hold_seconds,
        hold_room=settings.hold_room,
        trace=settings.tracing,
        state=definition.state,
    )
    assignment = AssignmentTracker(processor.health.forget)
    failures = 0  # batches in a row that failed after their retries

    async def on_batch(message: KafkaMessage) -> None:
        nonlocal failures
        records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
        try:
            await processor.process(records)
        except Exception:
            failures += 1
            pause = min(processor.backoff_cap, processor.backoff_initial * 2**failures)
            log.exception(
                "batch failed after retries; rewinding to fetch it again",
                retry_in=round(pause, 2),
                partitions=span(records),
            )
            await asyncio.sleep(pause)  # a batch that fails at once every time must not spin the loop
            try:
                await message.nack()  # seek back to the batch's first offsets: nothing is skipped
            except KafkaError as error:  # revoked meanwhile: the new owner starts from the committed offsets
                log.warning("rewind failed; the partitions moved to another consumer", error=repr(error))
            return
        failures = 0
        try:
            await message.ack()  # commit offsets only now that Postgres has committed
        except KafkaError as error:
            # Typically a rebalance took the partitions away: the new owner gets the batch again and its
            # inbox recognises every event, so this is safe to let go.
            log.warning("offset commit failed; the batch will be redelivered", error=repr(error))

    subscriber = broker.subscriber(
        pattern=processor.sources.pattern(),
        decoder=_undecoded,
        group_id=settings.group_id,
        batch=True,
        max_records=settings.max_batch,
        # Bounds what waits in memory, however many partitions are assigned (docs/operations.md, "Tuning").
        fetch_max_bytes=settings.fetch_max_bytes,
        max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        listener=assignment,
    )
    fetch = waiting_only_for_records(settings.max_batch, BATCH_WAIT_MS)
    subscriber.get_msg = guarded(fetch)  # type: ignore[method-assign,assignment]
    subscriber(on_batch)
    relay = outbox.OutboxRelay(
        dsn=settings.database_url,
        pool=pool,
        schema=settings.schema_name,
        kafka=settings.kafka,
        batch=settings.relay_batch,
        poll_seconds=settings.relay_poll_seconds,
        metrics=metrics,
        trace=settings.tracing,
        linger_ms=settings.relay_linger_ms,
        batch_bytes=settings.relay_batch_bytes,
    )
    relay_task = asyncio.create_task(relay.run(), name=f"outbox-relay-{settings.cog}")
    await broker.start()
    runtime = Runtime(definition, settings, pool, broker, relay, processor, metrics, assignment)
    log.info("service started", group=settings.group_id, pattern=processor.sources.pattern())
    # Every service exports its own consumer lag (fivecogs_consumer_lag, fivecogs_consumer_lag_seconds).
    tasks = [
        asyncio.create_task(work(runtime), name=getattr(work, "__name__", "background"))
        for work in (export_lag, keep_held, *definition.background)
    ]
    try:
        yield runtime
    finally:
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        for task in tasks:
            task.cancel()
        # Bounded: a background task that swallowed its cancellation must not hold the shutdown.
        _, stuck = await asyncio.wait(tasks, timeout=BACKGROUND_STOP_SECONDS)
        for task in stuck:
            log.warning("background task did not stop; left behind", task=task.get_name())
        await broker.stop()  # stops consuming, waits for the in-flight batch, commits, leaves the group
        await relay.stop()
        # Rows the relay has no time left for stay in the outbox: the next start sends them (duplicates at most).
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(relay_task, max(0.5, deadline - time.monotonic()))
        try:
            await asyncio.wait_for(pool.close(), max(0.5, deadline - time.monotonic()))
        except TimeoutError:
            pool.terminate()
        log.info("service stopped")


async def keep_held(runtime: Runtime) -> None:
    """Reject held events whose wait is over, and export how many are held and for how long."""
    processor, metrics, cog = runtime.processor, runtime.metrics, runtime.settings.cog
    reported: set[str] = set()
    while True:
        try:
            while await processor.expire_held() > 0:
                pass
            async with runtime.pool.acquire() as conn:
                found = await holding.summary(conn)
            for gone in reported - {row.reason for row in found}:
                metrics.events_held.labels(cog, gone).set(0)
                metrics.events_held_oldest.labels(cog, gone).set(0)
            for row in found:
                metrics.events_held.labels(cog, row.reason).set(row.count)
                metrics.events_held_oldest.labels(cog, row.reason).set(row.oldest_seconds)
            reported = {row.reason for row in found}
        except Exception as error:  # Postgres away for a moment: the next round tries again
            if not is_transient(error):
                log.exception("expiring held events failed")
        await asyncio.sleep(runtime.settings.hold_check_seconds)


async def _undecoded(message: KafkaMessage) -> None:
    """FastStream would parse every value as JSON before our handler runs, and fail on exactly the records that
    must reach the dead-letter topic intact: the batch processor reads the raw records itself."""
    return None


class _HttpServer(uvicorn.Server):
    """Signals belong to `serve`, which stops consuming and flushes the outbox before HTTP goes away."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_app(runtime: Runtime) -> Starlette:
    """The health routes and the service's own, all but the health routes behind the operator tokens."""
    auth = Middleware(BearerAuth, tokens=runtime.settings.operator_tokens)
    return Starlette(routes=health_routes(runtime) + runtime.definition.routes(runtime), middleware=[auth])


async def serve(definition: ServiceDefinition, settings: ServiceSettings, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running(definition, settings) as runtime:
        config = uvicorn.Config(
            http_app(runtime),
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            lifespan="off",
        )
        server = _HttpServer(config)
        http_task = asyncio.create_task(server.serve())
        log.info("http listening", host=settings.http_host, port=settings.http_port)
        if not settings.operator_tokens:
            log.warning(
                "no operator token configured: the management API is locked (401) until FIVECOGS_OPERATOR_TOKENS "
                "is set; /healthz, /readyz and /metrics stay open"
            )
        await stop.wait()
        log.info("shutting down")
        server.should_exit = True
        await http_task


def main(definition: ServiceDefinition) -> None:
    """Console entry point of each service: `fivecogs-<cog>`. Whatever stops it is one JSON line, not the
    interpreter's traceback: exit 2 for settings refused, 1 for anything else."""
    service = f"fivecogs-{definition.cog}"
    try:
        settings = load_settings(definition.cog)
    except ValidationError as error:
        configure_logging(service)
        log.error("settings refused; the service does not start", problems=_problems(error, definition.cog))
        sys.exit(2)
    configure_logging(service, settings.log_format, settings.log_level)
    try:
        asyncio.run(serve(definition, settings))
    except Exception as error:
        if isinstance(error, KafkaError) or is_transient(error):  # unreachable, refusing, restarting: no bug to trace
            log.error("service stopped by Kafka or Postgres", error=repr(error))
        else:
            log.exception("service stopped by an error")
        sys.exit(1)


def _problems(error: ValidationError, cog: str) -> list[str]:
    """Each refused setting by the variable that sets it (a field without an alias reads FIVECOGS_<COG>_<NAME>)."""
    named = []
    for item in error.errors():
        name = ".".join(map(str, item["loc"]))
        variable = name if name.isupper() else f"FIVECOGS_{cog.upper()}_{name.upper()}"
        named.append(f"{variable}: {item['msg']}")
    return named
