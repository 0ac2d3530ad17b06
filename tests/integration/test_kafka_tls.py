"""SASL_SSL: a broker whose TLS certificate comes from a CA this test makes, and clients that trust it or not."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import TopicAuthorizationFailedError

from fivecogs_ops.principals import ADMIN, service_username
from fivecogs_ops.stack import LocalStack, StackState, TlsListener
from fivecogs_shared import kafka_admin
from fivecogs_shared.contracts import events_topic
from fivecogs_shared.kafka_access import KafkaAccess
from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
KEYSTORE_PASSWORD = uuid.uuid4().hex


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_certificates(folder: Path) -> None:
    """A CA, and the broker's key and certificate (for 127.0.0.1) signed by it, in a PKCS12 keystore."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=fivecogs test CA", cwd=folder)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
             "-subj", "/CN=127.0.0.1", cwd=folder)  # fmt: skip
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "broker.pem", "-days", "2", "-extfile", "san.cnf", cwd=folder)  # fmt: skip
    _openssl("pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key", "-certfile", "ca.pem",
             "-out", "broker.p12", "-passout", f"pass:{KEYSTORE_PASSWORD}", cwd=folder)  # fmt: skip


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackState, int, Path]]:
    """A second broker beside the suite's: SASL_PLAINTEXT on loopback as usual, plus a SASL_SSL listener."""
    if shutil.which("openssl") is None or not (REPO / ".stack" / "kafka" / "libs").is_dir():
        pytest.skip("needs openssl and the stack's Kafka jars")
    folder = tmp_path_factory.mktemp("tls")
    _make_certificates(folder)
    tls_port = free_port()
    stack = LocalStack(
        REPO,
        stack_dir=folder / "stack",
        kafka_libs=REPO / ".stack" / "kafka" / "libs",
        preferred=StackState(kafka_port=free_port(), controller_port=free_port(), postgres_port=free_port()),
        tls=TlsListener(tls_port, folder / "broker.p12", KEYSTORE_PASSWORD),
    )
    stack.start_kafka(progress=lambda line: None)
    try:
        yield stack.load(), tls_port, folder / "ca.pem"
    finally:
        stack.stop_kafka(grace=10)


def _over_tls(state: StackState, port: int, user: str, cafile: Path | None) -> KafkaAccess:
    return KafkaAccess(
        f"127.0.0.1:{port}", "SASL_SSL", user, state.kafka_passwords[user], str(cafile) if cafile else None
    )


async def test_a_client_that_trusts_the_ca_publishes_and_reads_over_tls(tls_broker) -> None:
    state, port, ca = tls_broker
    admin = _over_tls(state, port, ADMIN, ca)
    await kafka_admin.ensure_topics(admin, [kafka_admin.TopicSpec(events_topic("inputs"))])
    inputs = _over_tls(state, port, service_username("inputs"), ca)
    producer = AIOKafkaProducer(**inputs.client())
    await producer.start()
    try:
        sent = await producer.send_and_wait(events_topic("inputs"), b'{"over": "tls"}', key=b"k")
        with pytest.raises(TopicAuthorizationFailedError):  # ACLs hold over TLS as well
            await producer.send_and_wait(events_topic("marketing"), b"{}")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**admin.client(), enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(events_topic("inputs"), sent.partition)
        consumer.assign([tp])
        consumer.seek(tp, sent.offset)
        [record] = (await consumer.getmany(tp, timeout_ms=10_000))[tp][:1]
    finally:
        await consumer.stop()
    assert record.value == b'{"over": "tls"}'


async def test_a_client_that_does_not_trust_the_ca_cannot_connect(tls_broker) -> None:
    state, port, _ = tls_broker
    assert not await kafka_admin.broker_reachable(_over_tls(state, port, ADMIN, None), timeout=5.0)


async def test_a_wrong_password_is_refused_over_tls(tls_broker) -> None:
    state, port, ca = tls_broker
    access = _over_tls(state, port, ADMIN, ca)
    assert await kafka_admin.broker_reachable(access, timeout=5.0)
    assert not await kafka_admin.broker_reachable(access.as_user(ADMIN, "not-it"), timeout=5.0)
