"""Records as the bench publishes them: partner events on a stage's ingest topic (CloudEvents binary mode, as
docs/partners.md asks), and facts on an upstream cog's events topic, written as that cog writes them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from fivecogs_shared.contracts import (
    INTERNAL_EVENT_TYPES,
    PARTNER_EVENT_TYPES,
    events_topic,
    ingest_topic,
    internal_type,
)
from fivecogs_shared.envelope import CORRELATION_HEADER

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes
    headers: Headers

    def header(self, name: str) -> str:
        return next((value.decode() for key, value in self.headers if key == name), "")


@dataclass
class Writer:
    """Unique ids from the run's tag and a counter; the key from the type's key field."""

    tag: str
    partner: str
    counter: int = 0

    def next_id(self, what: str = "ev") -> str:
        self.counter += 1
        return f"{self.tag}-{what}{self.counter:07d}"

    def partner_event(self, ce_type: str, data: Mapping[str, Any]) -> Record:
        kind = PARTNER_EVENT_TYPES[ce_type]
        value = json.dumps(data, ensure_ascii=False).encode()
        headers = ce_headers(ce_type, self.next_id(), f"partner/{self.partner}")
        return Record(ingest_topic(kind.cog, self.partner), str(data[kind.key_field]).encode(), value, headers)

    def fact(self, cog: str, name: str, data: BaseModel, correlation: str | None = None) -> Record:
        """An event of `cog` on its events topic, as its service emits it (ce_source `fivecogs/<cog>`, the key
        its type's key field)."""
        ce_type, event_id = internal_type(cog, name), self.next_id("fact")
        headers = ce_headers(ce_type, event_id, f"fivecogs/{cog}")
        headers += ((CORRELATION_HEADER, (correlation or event_id).encode()),)
        key = str(getattr(data, INTERNAL_EVENT_TYPES[ce_type].key_field)).encode()
        return Record(events_topic(cog), key, data.model_dump_json().encode(), headers)


def ce_headers(ce_type: str, event_id: str, source: str) -> Headers:
    return (
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("content-type", b"application/json"),
    )
