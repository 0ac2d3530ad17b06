"""How a client reaches Kafka and who it is there: one value passed wherever a bootstrap string went before.

Every fivecogs listener requires SASL/SCRAM-SHA-512; SASL_SSL adds TLS (with `cafile` for a private CA),
SASL_PLAINTEXT is for loopback development. PLAINTEXT exists only for clusters without authentication.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

from faststream.security import BaseSecurity, SASLScram512

Protocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]
PROTOCOLS: tuple[Protocol, ...] = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISM = "SCRAM-SHA-512"


class AccessError(ValueError):
    """Kafka client settings that cannot work (a protocol without credentials, say); the message says which."""


@dataclass(frozen=True)
class KafkaAccess:
    bootstrap: str
    protocol: Protocol = "SASL_PLAINTEXT"
    username: str = ""
    password: str = field(default="", repr=False)
    cafile: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise AccessError(f"KAFKA_SECURITY_PROTOCOL {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if self.protocol != "PLAINTEXT" and not (self.username and self.password):
            raise AccessError(f"{self.protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, bootstrap: str | None = None) -> KafkaAccess:
        env = os.environ if environ is None else environ
        return cls(
            bootstrap=bootstrap or env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            protocol=cast(Protocol, env.get("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")),
            username=env.get("KAFKA_SASL_USERNAME", ""),
            password=env.get("KAFKA_SASL_PASSWORD", ""),
            cafile=env.get("KAFKA_SSL_CAFILE") or None,
        )

    def env(self) -> dict[str, str]:
        """The environment a child process reads this access from (`from_env`)."""
        found = {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "KAFKA_SECURITY_PROTOCOL": self.protocol}
        if self.username:
            found |= {"KAFKA_SASL_USERNAME": self.username, "KAFKA_SASL_PASSWORD": self.password}
        if self.cafile:
            found["KAFKA_SSL_CAFILE"] = self.cafile
        return found

    def as_user(self, username: str, password: str) -> KafkaAccess:
        """The same cluster, as another principal."""
        return replace(self, username=username, password=password)

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.protocol != "SASL_SSL":
            return None
        return ssl.create_default_context(cafile=self.cafile)  # verifies the broker's name and chain

    def client(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        found: dict[str, Any] = {"bootstrap_servers": self.bootstrap, "security_protocol": self.protocol}
        if self.protocol != "PLAINTEXT":
            found |= {
                "sasl_mechanism": MECHANISM,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        if context := self.ssl_context():
            found["ssl_context"] = context
        return found

    def security(self) -> BaseSecurity | None:
        """FastStream's form of the same settings."""
        if self.protocol == "PLAINTEXT":
            return None
        return SASLScram512(self.username, self.password, ssl_context=self.ssl_context())
