"""How fivecogs takes a partner record in, per docs/partners.md §2-§3, written again for the model: the
record is either an event of the topic's cog or a dead letter of one kind."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ValidationError

from fivecogs_ops.simulate.records import Sent
from fivecogs_shared.contracts import PARTNER_EVENT_TYPES

MAX_VALUE_BYTES = 256 * 1024
REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time")
COG_OF_TOPIC = {f"fivecogs.{kind.cog}.ingest": kind.cog for kind in PARTNER_EVENT_TYPES.values()}


@dataclass(frozen=True)
class Reading:
    cog: str
    ce_type: str
    source: str
    event_id: str
    time: datetime
    data: BaseModel
    fingerprint: bytes  # what "the same event again" means: same type and byte-identical value


def read(sent: Sent) -> Reading | str:
    """The event in the record, or the dead-letter kind that explains why there is none."""
    problem = _header_problem(sent)
    if problem:
        return problem
    cog = COG_OF_TOPIC[sent.topic]
    kind = PARTNER_EVENT_TYPES.get(sent.ce_type)
    if kind is None or kind.cog != cog:
        return "unknown_type"
    if len(sent.value) > MAX_VALUE_BYTES:
        return "oversized"
    try:
        json.loads(sent.value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "malformed"
    try:
        data = kind.model.model_validate_json(sent.value)
    except ValidationError:
        return "schema"
    if sent.key != str(getattr(data, kind.key_field)).encode():
        return "schema"
    return Reading(
        cog=cog,
        ce_type=sent.ce_type,
        source=sent.source,
        event_id=sent.event_id,
        time=_moment(sent.header("ce_time") or ""),
        data=data,
        fingerprint=hashlib.sha256(sent.ce_type.encode() + b"\0" + sent.value).digest(),
    )


def _header_problem(sent: Sent) -> str | None:
    if any(not sent.header(name) for name in REQUIRED):
        return "malformed"
    if sent.header("ce_specversion") != "1.0":
        return "malformed"
    content_type = sent.header("content-type") or sent.header("ce_datacontenttype")
    if content_type and content_type.split(";")[0].strip() != "application/json":
        return "malformed"
    if any(len(sent.header(name) or "") > 200 for name in ("ce_id", "ce_source")):
        return "malformed"
    try:
        _moment(sent.header("ce_time") or "")
    except ValueError:
        return "malformed"
    return None


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("RFC 3339 needs an offset")
    return moment
