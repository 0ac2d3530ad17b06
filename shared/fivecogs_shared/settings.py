"""Settings every service reads: shared connection strings plus per-service knobs under FIVECOGS_<COG>_."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fivecogs_shared.kafka_access import KafkaAccess, Protocol

DEFAULT_HTTP_PORTS = {
    "inputs": 8081,
    "knowledge": 8082,
    "marketing": 8083,
    "communication": 8084,
    "management": 8085,
}


class ServiceSettings(BaseSettings):
    """Kafka and Postgres come from the unprefixed KAFKA_* and DATABASE_URL variables (each service gets its own
    Kafka principal there); the rest is per service, e.g. FIVECOGS_MARKETING_HTTP_PORT."""

    model_config = SettingsConfigDict(extra="ignore")

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
    http_host: str = "0.0.0.0"
    http_port: int = 0
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    # One Postgres transaction per polled batch: bigger batches mean fewer round trips, longer redelivery.
    max_batch: int = 500
    relay_batch: int = 1000
    relay_poll_seconds: float = 1.0
    max_value_bytes: int = 256 * 1024
    # A partition whose batch has kept failing this long is reported stalled (/readyz, fivecogs_partition_stalled).
    stall_seconds: float = 30.0
    # Defaults are `fivecogs-<cog>` and `<cog>`; tests and blue/green deployments set their own.
    consumer_group: str | None = None
    db_schema: str | None = None

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
    def group_id(self) -> str:
        return self.consumer_group or f"fivecogs-{self.cog}"

    @property
    def schema_name(self) -> str:
        return self.db_schema or self.cog


def load_settings(cog: str, **overrides: object) -> ServiceSettings:
    prefixed = type(
        f"{cog.title()}Settings",
        (ServiceSettings,),
        {"model_config": SettingsConfigDict(env_prefix=f"FIVECOGS_{cog.upper()}_", extra="ignore")},
    )
    settings: ServiceSettings = prefixed(cog=cog, **overrides)
    if not settings.http_port:
        settings.http_port = DEFAULT_HTTP_PORTS.get(cog, 8080)
    return settings
