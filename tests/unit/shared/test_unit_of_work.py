"""Event ids derive from the cause, so a replay or redelivery re-publishes the very same events."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from fivecogs_shared.envelope import Envelope, header_map
from fivecogs_shared.uow import UnitOfWork


class Note(BaseModel):
    text: str


def _cause(event_id: str) -> Envelope:
    return Envelope(
        id=event_id,
        source="partner/a",
        type="th.fivecogs.test.v1",
        time=datetime(2026, 6, 29, 9, 0, tzinfo=UTC),
        key="k",
        data=Note(text="x"),
        digest=b"",
        correlation_id="corr-1",
    )


def _ids(uow: UnitOfWork) -> list[bytes]:
    return [header_map(r.headers)["ce_id"] for r in uow.outgoing]


def test_ids_depend_on_the_cause_not_on_the_batch_around_it() -> None:
    alone = UnitOfWork(conn=None, cog="inputs")  # type: ignore[arg-type]
    scoped = alone.caused_by(_cause("e-2"))
    scoped.emit("th.fivecogs.inputs.x.v1", Note(text="a"), key="k")
    scoped.emit("th.fivecogs.inputs.x.v1", Note(text="b"), key="k")

    in_batch = UnitOfWork(conn=None, cog="inputs")  # type: ignore[arg-type]
    in_batch.caused_by(_cause("e-1")).emit("th.fivecogs.inputs.x.v1", Note(text="z"), key="k")
    later = in_batch.caused_by(_cause("e-2"))
    later.emit("th.fivecogs.inputs.x.v1", Note(text="a"), key="k")
    later.emit("th.fivecogs.inputs.x.v1", Note(text="b"), key="k")

    assert _ids(in_batch)[1:] == _ids(alone)
    assert len(set(_ids(in_batch))) == 3


def test_emitted_events_carry_the_cause_time_and_correlation() -> None:
    uow = UnitOfWork(conn=None, cog="inputs").caused_by(_cause("e-9"))  # type: ignore[arg-type]
    uow.emit("th.fivecogs.inputs.x.v1", Note(text="a"), key="k")
    headers = header_map(uow.outgoing[0].headers)
    assert headers["ce_time"] == b"2026-06-29T09:00:00+00:00"
    assert headers["ce_correlationid"] == b"corr-1"
    assert headers["ce_source"] == b"fivecogs/inputs"
