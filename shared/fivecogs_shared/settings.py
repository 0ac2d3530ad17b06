"""Settings every service reads: shared connection strings plus per-service knobs under FIVECOGS_<COG>_."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fivecogs_shared.kafka_access import KafkaAccess, Protocol
from fivecogs_shared.kafka_admin import DEFAULT_TOPIC_PARTITIONS, MAX_TOPIC_PARTITIONS, TOPIC_PARTITIONS_ENV
from fivecogs_shared.outbox import RELAY_BATCH_BYTES, RELAY_LINGER_MS, RELAY_MAX_BATCH_BYTES

DEFAULT_HTTP_PORTS = {
    "inputs": 8081,
    "knowledge": 8082,
    "marketing": 8083,
    "communication": 8084,
    "management": 8085,
}
# Loopback unless told otherwise: a service reachable from the network must be put there on purpose
# (the container image sets FIVECOGS_HTTP_HOST=0.0.0.0, and compose publishes on 127.0.0.1 only).
DEFAULT_HTTP_HOST = "127.0.0.1"
OPERATOR_TOKENS_ENV = "FIVECOGS_OPERATOR_TOKENS"
MIN_TOKEN_LENGTH = 16
# RFC 6750's b64token: what can travel in `Authorization: Bearer <token>` unquoted.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def parse_operator_tokens(value: str) -> tuple[SecretStr, ...]:
    """FIVECOGS_OPERATOR_TOKENS: comma-separated, several at once so a token can be rotated without downtime."""
    return checked_tokens([part.strip() for part in value.split(",") if part.strip()])


def checked_tokens(tokens: Sequence[str]) -> tuple[SecretStr, ...]:
    """Errors name a token by its position only, so a refused token is never printed."""
    for position, token in enumerate(tokens, start=1):
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"operator token #{position} is shorter than {MIN_TOKEN_LENGTH} characters")
        if not _B64TOKEN.fullmatch(token):
            raise ValueError(f"operator token #{position} has characters a bearer token cannot carry")
    return tuple(SecretStr(token) for token in tokens)


def _http_host_field(*env_names: str) -> Any:
    return Field(DEFAULT_HTTP_HOST, validation_alias=AliasChoices(*env_names, "FIVECOGS_HTTP_HOST"))


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_HOLD_SECONDS = 300.0


def _hold_field(*env_names: str) -> Any:
    """FIVECOGS_<COG>_HOLD_SECONDS for one service, FIVECOGS_HOLD_SECONDS for all of them."""
    return Field(DEFAULT_HOLD_SECONDS, gt=0, validation_alias=AliasChoices(*env_names, "FIVECOGS_HOLD_SECONDS"))


def _trace_field(*env_names: str) -> Any:
    """FIVECOGS_<COG>_TRACE_EVENTS for one service, FIVECOGS_TRACE_EVENTS for all of them."""
    return Field(False, validation_alias=AliasChoices(*env_names, "FIVECOGS_TRACE_EVENTS"))


class ServiceSettings(BaseSettings):
    """Kafka and Postgres come from the unprefixed KAFKA_* and DATABASE_URL variables (each service gets its own
    Kafka principal there); the rest is per service, e.g. FIVECOGS_MARKETING_HTTP_PORT."""

    # hide_input_in_errors: a refused value may be a password (DATABASE_URL) or a token; never echo it.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)

    cog: str
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers")
    )
    kafka_security_protocol: Protocol = Field(
        "SASL_PLAINTEXT", validation_alias=AliasChoices("KAFKA_SECURITY_PROTOCOL", "kafka_security_protocol")
    )
    kafka_sasl_username: str = Field("", validation_alias=AliasChoices("KAFKA_SASL_USERNAME", "kafka_sasl_username"))
    kafka_sasl_password: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("KAFKA_SASL_PASSWORD", "kafka_sasl_password")
    )
    kafka_ssl_cafile: str | None = Field(None, validation_alias=AliasChoices("KAFKA_SSL_CAFILE", "kafka_ssl_cafile"))
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5433/fivecogs",
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
    )
    # FIVECOGS_<COG>_HTTP_HOST for one service (see load_settings), FIVECOGS_HTTP_HOST for all of them.
    http_host: str = _http_host_field()
    http_port: int = 0
    # Bearer tokens for every HTTP route but /healthz, /readyz and /metrics; none means all of those answer 401.
    operator_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (), validation_alias=AliasChoices(OPERATOR_TOKENS_ENV)
    )
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    # One line per event applied and per event published, with its correlation id (also on at level debug).
    trace_events: bool = _trace_field("trace_events")
    # One Postgres transaction per polled batch: bigger batches mean fewer round trips, longer redelivery.
    max_batch: int = Field(500, ge=1)
    # What one fetch may bring (docs/operations.md, "Tuning"): the broker's answer, and a partition's share of it
    # (enough for a whole batch of small records). What is fetched waits in memory until consumed.
    fetch_max_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_partition_fetch_bytes: int = Field(1024 * 1024, ge=1024)
    # Checked here so that a service refuses a bad value at start; kafka_admin.default_partitions reads it.
    topic_partitions: int = Field(
        DEFAULT_TOPIC_PARTITIONS,
        ge=1,
        le=MAX_TOPIC_PARTITIONS,
        validation_alias=AliasChoices(TOPIC_PARTITIONS_ENV, "topic_partitions"),
    )
    relay_batch: int = Field(1000, ge=1)
    relay_poll_seconds: float = Field(1.0, gt=0)
    relay_linger_ms: int = Field(RELAY_LINGER_MS, ge=0, le=1000)
    # Under the smallest topic limit, so that a size refusal by the broker names one row (outbox.py).
    relay_batch_bytes: int = Field(RELAY_BATCH_BYTES, ge=1024, le=RELAY_MAX_BATCH_BYTES)
    max_value_bytes: int = 256 * 1024
    # A partition whose batch has kept failing this long is reported stalled (/readyz, fivecogs_partition_stalled).
    stall_seconds: float = 30.0
    # An event that refers to something not applied yet waits this long for it before it is rejected.
    hold_seconds: float = _hold_field("hold_seconds")
    hold_check_seconds: float = Field(1.0, gt=0)  # how often expired holds are looked for
    hold_room: int = Field(10_000, ge=0)  # events one partner topic may have waiting; more are rejected at once
    # Defaults are `fivecogs-<cog>` and `<cog>`; tests and blue/green deployments set their own.
    consumer_group: str | None = None
    db_schema: str | None = None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(level.lower() for level in LOG_LEVELS)}")
        return value.upper()

    @field_validator("operator_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_operator_tokens(value)
        if isinstance(value, list | tuple):  # given in code, e.g. by tests: the same rules apply
            return checked_tokens([v.get_secret_value() if isinstance(v, SecretStr) else str(v) for v in value])
        return value

    @property
    def kafka(self) -> KafkaAccess:
        return KafkaAccess(
            self.kafka_bootstrap_servers,
            self.kafka_security_protocol,
            self.kafka_sasl_username,
            self.kafka_sasl_password.get_secret_value(),
            self.kafka_ssl_cafile,
        )

    @property
    def tracing(self) -> bool:
        """Whether each event applied and published gets a line of its own."""
        return self.trace_events or self.log_level.upper() == "DEBUG"

    @property
    def group_id(self) -> str:
        return self.consumer_group or f"fivecogs-{self.cog}"

    @property
    def schema_name(self) -> str:
        return self.db_schema or self.cog


def load_settings(cog: str, **overrides: object) -> ServiceSettings:
    prefix = f"FIVECOGS_{cog.upper()}_"
    prefixed = type(
        f"{cog.title()}Settings",
        (ServiceSettings,),
        {
            "model_config": SettingsConfigDict(env_prefix=prefix, extra="ignore"),
            # A field with an alias ignores env_prefix: the service's own variable is named here, and wins.
            "__annotations__": {"http_host": str, "hold_seconds": float, "trace_events": bool},
            "http_host": _http_host_field(f"{prefix}HTTP_HOST"),
            "hold_seconds": _hold_field(f"{prefix}HOLD_SECONDS", "hold_seconds"),
            "trace_events": _trace_field(f"{prefix}TRACE_EVENTS", "trace_events"),
        },
    )
    settings: ServiceSettings = prefixed(cog=cog, **overrides)
    if not settings.http_port:
        settings.http_port = DEFAULT_HTTP_PORTS.get(cog, 8080)
    return settings
