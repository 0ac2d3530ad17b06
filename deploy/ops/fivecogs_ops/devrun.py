"""`make run`: the whole system on one machine, for a newcomer to watch."""

from __future__ import annotations

import asyncio
import signal
import threading

from rich.console import Console

from fivecogs_ops.auth import operator_tokens
from fivecogs_ops.principals import ADMIN, service_username
from fivecogs_ops.service_urls import forget_service, record_service
from fivecogs_ops.services import ServiceProcesses
from fivecogs_ops.simulate.arrival import ORDERED, Arrival
from fivecogs_ops.simulate.holds import hold_env
from fivecogs_ops.simulate.show import simulate_and_show
from fivecogs_ops.stack import LocalStack, external_env, masked
from fivecogs_shared.contracts import COGS
from fivecogs_shared.kafka_access import KafkaAccess


def run_everything(console: Console, *, enterprises: int, seed: int, arrival: Arrival = ORDERED) -> int:
    stack = LocalStack()
    env = external_env()
    started_stack = env is None
    if env is None:
        console.rule("[bold]1/4 Kafka and Postgres")
        state = stack.up(progress=lambda line: console.print(f"  [green]•[/] {line}"))
        env, admin = state.env(), state.kafka(ADMIN)
        service_kafka: dict[str, KafkaAccess] = {cog: state.kafka(service_username(cog)) for cog in COGS}
    else:
        console.print("using KAFKA_* and DATABASE_URL from the environment (one principal for everything)")
        admin, service_kafka = KafkaAccess.from_env(), {}  # one principal from the environment
    tokens = operator_tokens(stack.dir)  # FIVECOGS_OPERATOR_TOKENS when set, else .stack/operator-token
    token = tokens.current
    # A short hold, so the demo's deliberate dangling references are answered before it ends (`simulate.holds`).
    env = {**env, **hold_env()}
    services = ServiceProcesses(env=env, log_dir=stack.logs, kafka=service_kafka, operator_token=token)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        console.rule("[bold]2/4 the five services")
        for cog in COGS:
            services.start(cog)
        services.wait_ready(
            COGS,
            on_ready=lambda cog, secs: console.print(
                f"  [green]•[/] {cog:<13} ready in {secs:4.1f}s  {services.url(cog)}"
            ),
        )
        for cog in COGS:  # where `fivecogs stack env` and the other tools find them (service_urls)
            record_service(stack.dir, cog, services.url(cog), services.processes[cog].pid)
        console.rule("[bold]3/4 the demo scenario")
        asyncio.run(
            simulate_and_show(
                console,
                kafka=admin,
                management_url=services.url("management"),
                token=token,
                enterprises=enterprises,
                seed=seed,
                database_url=env["DATABASE_URL"],
                arrival=arrival,
            )
        )
        console.rule("[bold]4/4 running")
        for cog in COGS:
            console.print(f"  {cog:<13} {services.url(cog, '/readyz')}   log: {stack.logs / (cog + '.log')}")
        console.print(
            f"  kafka         {env['KAFKA_BOOTSTRAP_SERVERS']} (SASL/SCRAM-SHA-512; `fivecogs partners list`)\n"
            f"  postgres      {masked(env['DATABASE_URL'])}"
        )
        console.print(f"  operator token in {tokens.source} (send it as `Authorization: Bearer …`)")
        console.print("\n[bold]Press Ctrl-C to stop everything.[/]")
        stop.wait()
        return 0
    finally:
        console.print("\nstopping the services…")
        for name, process in services.processes.items():
            forget_service(stack.dir, name, process.pid)
        services.stop_all()
        if started_stack:
            stack.down(progress=lambda line: console.print(f"  [green]•[/] {line}"))
