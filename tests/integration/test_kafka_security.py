"""ACLs and SCRAM credentials (`fivecogs_ops.kafka_security`) against a real broker with SASL/SCRAM and the
StandardAuthorizer. The session stack's broker does not authenticate yet, so this module starts its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    BrokerResponseError,
    ClusterAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from aiokafka.protocol.admin import CreateAclsRequest_v1, DeleteAclsRequest_v1, DescribeAclsRequest_v1

from fivecogs_ops import kafka_security
from fivecogs_ops.kafka_security import (
    CLUSTER,
    Acl,
    create_acls,
    delete_acls,
    delete_scram_user,
    describe_acls,
    scram_users,
    set_scram_password,
)
from tests.conftest import REPO
from tests.support import free_port

pytestmark = pytest.mark.integration

LIBS = REPO / ".stack" / "kafka" / "libs"
SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller}
listeners=SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
username="admin" password="{password}" user_admin="{password}";
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \
required username="admin" password="{password}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin
log.dirs={data}
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
"""


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    admin_password: str

    def sasl(self, user: str, password: str) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": user,
            "sasl_plain_password": password,
            "request_timeout_ms": 5000,
        }


async def _java(*args: str, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            "java", "-Xmx512m", "-cp", f"{LIBS}/*", *args, stdout=out, stderr=asyncio.subprocess.STDOUT
        )


@pytest.fixture(scope="module")
async def broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Broker]:
    if not shutil.which("java"):
        pytest.skip("needs java to run a Kafka broker")
    if not any(LIBS.glob("kafka_2.13-*.jar")):
        pytest.skip(f"needs the Kafka jars in {LIBS} (`make stack-up` fetches them)")
    home = tmp_path_factory.mktemp("sasl-kafka")
    password, port = secrets.token_urlsafe(16), free_port()
    config = home / "server.properties"
    values = {"port": port, "controller": free_port(), "password": password, "data": home / "data"}
    config.write_text(SERVER_PROPERTIES.format(**values))
    log = home / "kafka.log"
    admin_scram = f"SCRAM-SHA-512=[name=admin,password={password}]"
    cluster_id = secrets.token_urlsafe(16)[:22]
    # The admin's credential is in the metadata log from the start: the broker itself logs in with it.
    storage = ["kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id, "-c", str(config)]
    fmt = await _java(*storage, "--add-scram", admin_scram, log=log)
    assert await asyncio.wait_for(fmt.wait(), 60) == 0, _tail(log)
    log4j = f"-Dlog4j2.configurationFile={REPO / 'deploy' / 'kafka' / 'log4j2.yaml'}"
    process = await _java(log4j, "kafka.Kafka", str(config), log=log)
    try:
        started = Broker(f"127.0.0.1:{port}", password)
        await _wait_ready(started, process, log)
        yield started
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _wait_ready(broker: Broker, process: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(120):
        assert process.returncode is None, f"the broker exited:\n{_tail(log)}"
        with contextlib.suppress(KafkaConnectionError, OSError):
            async with admin_as(broker, "admin", broker.admin_password) as admin:
                await admin.describe_cluster()
                return
        await asyncio.sleep(0.5)
    raise AssertionError(f"the broker did not answer in 60 s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


@contextlib.asynccontextmanager
async def admin_as(broker: Broker, user: str, password: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**broker.sasl(user, password))
    try:
        await asyncio.wait_for(admin.start(), 10)
        yield admin
    finally:
        await admin.close()


@pytest.fixture
async def admin(broker: Broker) -> AsyncIterator[AIOKafkaAdminClient]:
    async with admin_as(broker, "admin", broker.admin_password) as client:
        yield client


async def connects(broker: Broker, user: str, password: str) -> bool:
    try:
        async with admin_as(broker, user, password) as client:
            await client.describe_cluster()
    except KafkaConnectionError:  # aiokafka's answer to a refused SASL login (it logs the broker's reason)
        return False
    return True


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> bool:
    """The broker applies a change from the metadata log a moment after the controller answered."""
    for _ in range(int(timeout / 0.2)):
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False


async def acls_of(admin: AIOKafkaAdminClient, principal: str) -> list[Acl]:
    return await describe_acls(admin, principal=principal)


async def shows(admin: AIOKafkaAdminClient, principal: str, expected: list[Acl]) -> bool:
    """The principal's ACLs are exactly `expected`, once the broker has applied the change."""

    async def matches() -> bool:
        return await acls_of(admin, principal) == sorted(expected)

    return await eventually(matches)


# -- ACLs --------------------------------------------------------------------------------------------------
async def test_created_acls_are_described_back(admin: AIOKafkaAdminClient) -> None:
    alpha, beta = "User:sec-alpha", "User:sec-beta"
    alphas = [
        Acl(alpha, "topic", "sec.orders", "write"),
        Acl(alpha, "topic", "sec.partner.acme.", "read", pattern="prefixed"),
        Acl(alpha, "group", "sec-alpha", "read"),
        Acl(alpha, "cluster", CLUSTER, "idempotent_write"),
    ]
    betas = [
        Acl(beta, "group", "sec-beta-", "read", pattern="prefixed", permission="deny", host="10.1.2.3"),
        Acl(beta, "transactional_id", "sec-beta", "write"),
    ]
    await create_acls(admin, alphas + betas)
    await create_acls(admin, alphas[:1])  # an ACL that exists already is no error

    assert await shows(admin, alpha, alphas)
    assert await acls_of(admin, beta) == sorted(betas)
    groups = await describe_acls(admin, resource="group")
    assert {alphas[2], betas[0]} <= set(groups)
    assert all(acl.resource == "group" for acl in groups)


async def test_describe_filters_by_pattern(admin: AIOKafkaAdminClient) -> None:
    who = "User:sec-gamma"
    prefixed = Acl(who, "topic", "sec.gamma.", "read", pattern="prefixed")
    literal = Acl(who, "topic", "sec.gamma.orders", "read")
    await create_acls(admin, [prefixed, literal])
    assert await shows(admin, who, [prefixed, literal])

    def of_gamma(pattern: Any, name: str) -> Awaitable[list[Acl]]:
        return describe_acls(admin, principal=who, resource="topic", name=name, pattern=pattern)

    assert await of_gamma("prefixed", "sec.gamma.") == [prefixed]
    assert await of_gamma("literal", "sec.gamma.") == []
    assert await of_gamma("literal", "sec.gamma.orders") == [literal]
    # "match": every ACL that applies to the name, the prefixed one among them
    assert await of_gamma("match", "sec.gamma.orders") == sorted([prefixed, literal])
    assert await of_gamma("match", "sec.gamma.other") == [prefixed]


async def test_delete_returns_what_it_deleted(admin: AIOKafkaAdminClient) -> None:
    who = "User:sec-delta"
    acls = [Acl(who, "topic", "sec.delta", "read"), Acl(who, "group", "sec-delta", "read", pattern="prefixed")]
    kept = Acl(who, "topic", "sec.delta.kept", "describe")
    await create_acls(admin, [*acls, kept])
    assert await shows(admin, who, [*acls, kept])

    never_made = Acl(who, "topic", "sec.delta", "write")
    assert await delete_acls(admin, [*acls, never_made]) == sorted(acls)
    assert await shows(admin, who, [kept])
    assert await delete_acls(admin, acls) == []


async def test_the_v1_layout_works_too(admin: AIOKafkaAdminClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka 4 negotiates v3; v1 is the fallback for a broker without it (aiokafka's own v1 classes)."""
    monkeypatch.setattr(kafka_security._CreateAcls, "_CLASSES", (CreateAclsRequest_v1,))
    monkeypatch.setattr(kafka_security._DescribeAcls, "_CLASSES", (DescribeAclsRequest_v1,))
    monkeypatch.setattr(kafka_security._DeleteAcls, "_CLASSES", (DeleteAclsRequest_v1,))
    who = "User:sec-epsilon"
    acls = [Acl(who, "topic", "sec.eps.", "write", pattern="prefixed", permission="deny", host="10.0.0.1")]
    await create_acls(admin, acls)
    assert await shows(admin, who, acls)
    assert await delete_acls(admin, acls) == acls


async def test_a_user_without_cluster_rights_is_told_so(admin: AIOKafkaAdminClient, broker: Broker) -> None:
    await set_scram_password(admin, "sec-nobody", "nobody-password")
    assert await eventually(lambda: connects(broker, "sec-nobody", "nobody-password"))
    async with admin_as(broker, "sec-nobody", "nobody-password") as nobody:
        with pytest.raises(
            ClusterAuthorizationFailedError, match=r"1 of 1 refused.*needs ALTER permission; .*super\.users"
        ):
            await create_acls(nobody, [Acl("User:sec-nobody", "topic", "sec.any", "write")])
        with pytest.raises(ClusterAuthorizationFailedError, match="describing ACLs"):
            await describe_acls(nobody)
        with pytest.raises(ClusterAuthorizationFailedError, match="SCRAM"):
            await scram_users(nobody)
        with pytest.raises(ClusterAuthorizationFailedError, match="SCRAM user 'sec-nobody'"):
            await set_scram_password(nobody, "sec-nobody", "a-new-one")


# -- SCRAM users -------------------------------------------------------------------------------------------
async def test_a_scram_user_writes_where_its_acls_allow(admin: AIOKafkaAdminClient, broker: Broker) -> None:
    await admin.create_topics([NewTopic(name, 1, 1) for name in ("sec.allowed", "sec.denied")])
    await set_scram_password(admin, "sec-writer", "writer-password")
    await create_acls(admin, [Acl("User:sec-writer", "topic", "sec.allowed", "write")])
    assert await shows(admin, "User:sec-writer", [Acl("User:sec-writer", "topic", "sec.allowed", "write")])
    assert await eventually(lambda: connects(broker, "sec-writer", "writer-password"))

    producer = AIOKafkaProducer(**broker.sasl("sec-writer", "writer-password"))
    await producer.start()
    try:
        sent = await asyncio.wait_for(producer.send_and_wait("sec.allowed", b"hello"), 10)
        assert sent.topic == "sec.allowed"
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(producer.send_and_wait("sec.denied", b"hello"), 10)
    finally:
        await producer.stop()


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


async def test_a_wrong_password_is_refused(admin: AIOKafkaAdminClient, broker: Broker) -> None:
    await set_scram_password(admin, "sec-zeta", "right-password")
    assert await eventually(lambda: connects(broker, "sec-zeta", "right-password"))
    # aiokafka reports the broker's reason only in its log: read it there, whatever the logging set-up of the
    # tests before (a service configured in this process may have stopped propagation to the root logger).
    messages, aiokafka_log = _Messages(), logging.getLogger("aiokafka")
    aiokafka_log.addHandler(messages)
    level = aiokafka_log.level
    aiokafka_log.setLevel(logging.ERROR)  # setLevel, not the attribute: its children cache what is enabled
    try:
        assert not await connects(broker, "sec-zeta", "wrong-password")
    finally:
        aiokafka_log.removeHandler(messages)
        aiokafka_log.setLevel(level)
    assert any("invalid credentials" in message for message in messages.seen)
    assert not await connects(broker, "sec-no-such-user", "right-password")


async def test_a_rotated_password_replaces_the_old_one(admin: AIOKafkaAdminClient, broker: Broker) -> None:
    await set_scram_password(admin, "sec-eta", "first-password")
    assert await eventually(lambda: connects(broker, "sec-eta", "first-password"))

    await set_scram_password(admin, "sec-eta", "second-password", iterations=4096)
    assert await eventually(lambda: connects(broker, "sec-eta", "second-password"))
    assert not await connects(broker, "sec-eta", "first-password")


async def test_a_deleted_user_is_gone(admin: AIOKafkaAdminClient, broker: Broker) -> None:
    await set_scram_password(admin, "sec-theta", "theta-password")
    assert await eventually(lambda: connects(broker, "sec-theta", "theta-password"))
    assert {"admin", "sec-theta"} <= set(await scram_users(admin))

    await delete_scram_user(admin, "sec-theta")
    assert await eventually(_not(lambda: connects(broker, "sec-theta", "theta-password")))
    assert "sec-theta" not in await scram_users(admin)
    await delete_scram_user(admin, "sec-theta")  # a second time: nothing to delete, no error
    await delete_scram_user(admin, "sec-never-existed")


async def test_an_unacceptable_credential_is_explained(admin: AIOKafkaAdminClient) -> None:
    with pytest.raises(BrokerResponseError, match="error 93 UNACCEPTABLE_CREDENTIAL"):
        await set_scram_password(admin, "sec-iota", "iota-password", iterations=100)
    with pytest.raises(ValueError, match="non-empty"):
        await set_scram_password(admin, "sec-iota", "")


def _not(check: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
    async def negated() -> bool:
        return not await check()

    return negated
