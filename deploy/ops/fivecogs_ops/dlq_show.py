"""What `fivecogs dlq list` prints: a summary line, each dead-letter topic's records, the parked outbox rows.

Tables fit 80 columns without breaking a name: topic names, ids and types never wrap (they are stacked in one
cell instead), only the reason a record was parked does. Every value a partner sent is shown as plain text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import groupby
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fivecogs_ops.dlq import ParkedOutbox
from fivecogs_ops.dlq_records import DeadLetter, DeadLetterListing


def listing_json(found: DeadLetterListing, parked: Sequence[ParkedOutbox]) -> dict[str, Any]:
    records = [{**dataclasses.asdict(letter), "time": letter.time.isoformat()} for letter in found.shown]
    return {
        "waiting": found.waiting,
        "replayed": found.replayed,
        "by_kind": dict(found.by_kind.most_common()),
        "shown": len(records),
        "dead_letters": records,
        "parked_outbox": [parked_json(p) for p in parked],
    }


def show_listing(out: Console, found: DeadLetterListing, parked: Sequence[ParkedOutbox], limit: int | None) -> None:
    out.print(summary_line(found, limit), soft_wrap=True)
    for topic, letters in groupby(found.shown, key=lambda letter: letter.topic):
        records = list(letters)
        partner = f" · partner {records[0].partner}" if records[0].partner else ""
        out.print(Text.assemble((plain(topic), "bold"), partner))  # wraps at the space, never in the name
        out.print(letters_table(records))
    for service in parked:
        if service.rows:
            print_parked(out, service)
    if none := [p.service for p in parked if p.count == 0]:
        out.print(f"no parked outbox rows: {', '.join(none)}")
    if untabled := [p.service for p in parked if p.count is None]:
        out.print(f"no outbox_parked table yet (it comes with the service's next start): {', '.join(untabled)}")


def summary_line(found: DeadLetterListing, limit: int | None) -> Text:
    line = Text("dead letters: ")
    line.append(f"{found.waiting:,} waiting", style="yellow" if found.waiting else "green")
    if found.by_kind:
        line.append(" (" + ", ".join(f"{kind} {count:,}" for kind, count in found.by_kind.most_common()) + ")")
    line.append(f", {found.replayed:,} replayed")
    if limit is not None and len(found.shown) == limit:
        line.append(f"; the first {limit:,} shown (--limit)", style="dim")
    return line


RECORD_COLUMN = 48  # the longest ce_type fivecogs knows (38) with room to spare
REASON_COLUMN = 24


def letters_table(letters: Sequence[DeadLetter]) -> Table:
    """Two columns: the record (where, when, its event id and type) and why it was parked."""
    table = Table(box=box.SIMPLE_HEAD, show_lines=True, show_edge=False, pad_edge=False)
    # A partner chooses its ids: one of any length is cut (whole in --json), never the reason beside it.
    table.add_column("partition@offset · parked (UTC)\nce_id\nce_type", no_wrap=True, max_width=RECORD_COLUMN)
    table.add_column("error kind\ndetail", overflow="fold", ratio=1, min_width=REASON_COLUMN)
    for letter in letters:
        when = letter.time.strftime("%Y-%m-%d %H:%M:%S")
        first = Text.assemble((letter.at, "bold"), f"  {when}", (" replayed" if letter.replayed else "", "dim"))
        event = Text("\n").join([first, Text(plain(letter.ce_id or "—")), Text(plain(letter.ce_type or "—"))])
        why = Text.assemble((plain(letter.kind), "red"), "\n", plain(letter.detail))
        if not letter.whole:
            why.append("\nonly a slice of the value was kept: never replayed", style="dim")
        table.add_row(event, why)
    return table


def parked_json(parked: ParkedOutbox) -> dict[str, object]:
    rows = [{"service": parked.service, **dataclasses.asdict(row)} for row in parked.rows]
    for row, parked_row in zip(rows, parked.rows, strict=True):
        row["key"] = _key(parked_row.key)
        row["parked_at"] = parked_row.parked_at.isoformat()
    return {"service": parked.service, "count": parked.count, "shown": len(rows), "rows": rows}


def print_parked(out: Console, parked: ParkedOutbox) -> None:
    assert parked.count is not None  # there are rows, so there is the table
    shown = f", the oldest {len(parked.rows)} shown" if len(parked.rows) < parked.count else ""
    out.print(Text(f"parked outbox rows of {parked.service}: {parked.count}{shown}", style="bold"), soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD, show_lines=True, show_edge=False, pad_edge=False)
    table.add_column("topic\nkey", no_wrap=True)
    table.add_column("bytes\nparked (UTC)", justify="right", no_wrap=True)
    table.add_column("error", overflow="fold", ratio=1)
    for row in parked.rows:
        when = row.parked_at.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(Text(f"{row.topic}\n{plain(_key(row.key) or '—')}"), f"{row.bytes:,}\n{when}", Text(row.error))
    out.print(table)


def plain(value: str) -> str:
    """A partner's text as one printable line: no escape sequences reach the terminal."""
    return "".join(c if c.isprintable() else " " for c in value)


def _key(key: bytes | None) -> str | None:
    return None if key is None else key.decode("utf-8", "replace")
