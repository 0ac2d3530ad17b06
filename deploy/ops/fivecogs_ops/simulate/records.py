"""The Kafka records a simulation publishes, each with what the scenario means it to cause."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from fivecogs_shared.contracts import PARTNER_EVENT_TYPES, ingest_topic, partner_of_topic
from fivecogs_shared.contracts.topics import source_partner

Headers = tuple[tuple[str, bytes], ...]

ACCEPTED = "accepted"
DUPLICATE = "duplicate"  # the same event again: no effect and no answer
UNAUTHORIZED = "unauthorized_source"  # a ce_source of another partner than the topic's: refused, producer told
BAD_KINDS = ("malformed", "schema", "unknown_type", "conflict", "oversized")


@dataclass(frozen=True)
class Sent:
    """One record for an ingest topic. `intent` is the outcome the scenario aims at ("accepted", "duplicate", a
    dead-letter kind or "rule:<name>"); the model works the real expectation out on its own."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    intent: str = ACCEPTED
    note: str = ""

    def header(self, name: str) -> str | None:
        for header_name, value in self.headers:
            if header_name == name:
                return value.decode("utf-8", errors="replace")
        return None

    @property
    def partner(self) -> str:
        """Whose ingest topic the record goes to: the partner that sends it (and is answered)."""
        partner = partner_of_topic(self.topic)
        assert partner is not None, f"{self.topic} is no partner's ingest topic"
        return partner

    @property
    def event_id(self) -> str:
        return self.header("ce_id") or ""

    @property
    def source(self) -> str:
        return self.header("ce_source") or ""

    @property
    def ce_type(self) -> str:
        return self.header("ce_type") or ""

    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.value)
        return parsed


@dataclass
class EventWriter:
    """Serialises partner events once, the way a careful partner does: ids from a per-run tag and a counter,
    the key from the type's key field, CloudEvents headers in binary mode."""

    tag: str
    counter: int = 0
    written: list[Sent] = field(default_factory=list)  # since the last `take`
    history: list[Sent] = field(default_factory=list)  # everything

    def next_id(self) -> str:
        self.counter += 1
        return f"{self.tag}-ev{self.counter:05d}"

    def event(
        self,
        ce_type: str,
        data: Mapping[str, Any],
        *,
        source: str,
        time: datetime,
        intent: str = ACCEPTED,
        note: str = "",
    ) -> Sent:
        return self.add(self.build(ce_type, data, source=source, time=time, intent=intent, note=note))

    def build(
        self,
        ce_type: str,
        data: Mapping[str, Any],
        *,
        source: str,
        time: datetime,
        intent: str = ACCEPTED,
        note: str = "",
    ) -> Sent:
        """A record not yet written: to be broken on purpose before `add`."""
        kind, partner = PARTNER_EVENT_TYPES[ce_type], source_partner(source)
        if partner is None:
            raise ValueError(f"a scenario's source must name a partner (partner/<id>), not {source!r}")
        return Sent(
            topic=ingest_topic(kind.cog, partner),
            key=str(data[kind.key_field]).encode(),
            value=json.dumps(data, ensure_ascii=False).encode(),
            headers=ce_headers(ce_type, self.next_id(), source, time.isoformat()),
            intent=intent,
            note=note,
        )

    def add(self, sent: Sent) -> Sent:
        self.written.append(sent)
        self.history.append(sent)
        return sent

    def take(self) -> list[Sent]:
        taken, self.written = self.written, []
        return taken


def ce_headers(ce_type: str, event_id: str, source: str, time: str) -> Headers:
    return (
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_time", time.encode()),
        ("content-type", b"application/json"),
    )


def with_headers(sent: Sent, changes: Mapping[str, bytes | None], intent: str, note: str) -> Sent:
    """A copy with headers replaced, added, or dropped (None): for records that break the CloudEvents rules."""
    kept = [(name, changes.get(name, value)) for name, value in sent.headers]
    added = [(name, value) for name, value in changes.items() if sent.header(name) is None]
    headers = tuple((name, value) for name, value in kept + added if value is not None)
    return replace(sent, headers=headers, intent=intent, note=note)


def with_value(sent: Sent, value: bytes, intent: str, note: str, key: bytes | None = None) -> Sent:
    return replace(sent, value=value, key=sent.key if key is None else key, intent=intent, note=note)


def retitled(sent: Sent, intent: str, note: str) -> Sent:
    return replace(sent, intent=intent, note=note)
