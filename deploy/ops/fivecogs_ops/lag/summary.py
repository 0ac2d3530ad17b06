"""The ops page without JavaScript (`/summary`): the latest sample rendered on the server as plain HTML, refreshed
by `<meta http-equiv="refresh">`. Every value is escaped: group names, reasons and topics come from the cluster
and the databases, and a consumer group may be called anything, `<script>` included."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from fivecogs_ops.lag.overall import SEVERITY, UNKNOWN
from fivecogs_ops.lag.table import duration


def _page_style() -> str:
    """The JS page's own stylesheet, so both views look alike without a copy of it here."""
    found = re.search(r"<style>(.*?)</style>", (Path(__file__).parent / "static" / "ops.html").read_text("utf-8"), re.S)
    assert found, "static/ops.html has its <style>"
    return found[1]


STYLE = _page_style()
EXTRA_STYLE = "#error, #reasons { display: block; } ul.reasons { margin: 0; padding-left: 18px; }"


def render_summary(sample: Mapping[str, Any]) -> str:
    overall = sample.get("overall") or {"status": UNKNOWN, "reasons": []}
    refresh = round(sample.get("refresh_seconds") or 5)
    error = f'<div id="error">{_e(sample["error"])}</div>' if sample.get("error") else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fivecogs · operations summary</title>
<style>{STYLE}{EXTRA_STYLE}</style>
</head>
<body>
<header>
  <h1>fivecogs · operations</h1>
  <span id="overall" class="badge {_status_class(overall["status"])}">{_e(overall["status"])}</span>
  <span class="meta">{_e(_sampled(sample))} · refreshes every {refresh} s</span>
</header>
<main>
  <section>
    {error}
    <div class="card" id="reasons"><h3>To act on</h3>{_reasons(overall["reasons"])}</div>
    <div class="card"><h3>Consumer groups</h3>{_groups(sample.get("groups") or [])}</div>
  </section>
  <aside>
    <div class="card"><h3>Outbox backlog</h3>{_outbox(sample.get("outbox"))}</div>
    <div class="card"><h3>Held events</h3>{_held(sample.get("held"))}</div>
    <div class="card"><h3>Dead letters</h3>{_dead_letters(sample.get("dlq"))}</div>
  </aside>
</main>
</body>
</html>
"""


def _e(value: object) -> str:
    return escape("–" if value is None else str(value), quote=True)


def _status_class(status: str) -> str:
    """The badge's colour; a status the stylesheet does not know gets UNKNOWN's (and is never a raw class)."""
    return status if status in SEVERITY else UNKNOWN


def _sampled(sample: Mapping[str, Any]) -> str:
    at = sample.get("time")
    return "no sample yet" if at is None else "sampled " + time.strftime("%H:%M:%S UTC", time.gmtime(at))


def _number(n: int | None) -> str:
    return "–" if n is None else f"{n:,}"


def _reasons(reasons: Sequence[str]) -> str:
    if not reasons:
        return '<p class="empty">Nothing: no group behind, no dead letter, nothing parked or about to expire.</p>'
    return '<ul class="reasons">' + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>"


NO_TABLE = '<td class="empty" colspan="3">no table</td>'  # a whole cell: the service has not run here yet


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int], empty: str) -> str:
    """Cells arrive escaped (or as a whole `<td>`); `numeric` are the columns aligned right."""
    cls = [' class="num"' if i in numeric else "" for i in range(len(head))]
    header = "".join(f"<th{cls[i]}>{_e(h)}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(_cell(c, cls[i]) for i, c in enumerate(row)) + "</tr>" for row in rows)
    if not body:
        body = f'<tr><td class="empty" colspan="{len(head)}">{_e(empty)}</td></tr>'
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _cell(content: str, cls: str) -> str:
    return content if content.startswith("<td") else f"<td{cls}>{content}</td>"


def _groups(groups: Sequence[Mapping[str, Any]]) -> str:
    rows = (
        [
            f'<span class="mono">{_e(g["group"])}</span>',
            f'<span class="badge {_status_class(g["status"])}">{_e(g["status"])}</span>',
            _e(_number(g["lag"])),
            _e(duration(g["lag_seconds"])),
            "" if g["status"] == "OK" else _e(g["reason"]),
        ]
        for g in groups
    )
    return _table(["group", "status", "lag", "behind", "why"], rows, (2, 3), "No consumer groups found.")


def _outbox(outbox: Sequence[Mapping[str, Any]] | None) -> str:
    if outbox is None:
        return '<p class="empty">could not be read</p>'
    rows = (
        [f'<span class="mono">{_e(o["service"])}</span>', NO_TABLE]
        if o["rows"] is None
        else [
            f'<span class="mono">{_e(o["service"])}</span>',
            _e(_number(o["rows"])),
            _e(duration(o["oldest_seconds"]) if o["rows"] else None),
            _e(_number(o.get("parked"))),
        ]
        for o in outbox
    )
    return _table(["service", "unsent", "oldest", "parked"], rows, (1, 2, 3), "no services")


def _held(held: Sequence[Mapping[str, Any]] | None) -> str:
    if held is None:
        return '<p class="empty">could not be read</p>'
    rows = [row for s in held for row in _held_rows(s)]
    return _table(["service · reason", "held", "oldest", "ends in"], rows, (1, 2, 3), "no services")


def _held_rows(s: Mapping[str, Any]) -> list[list[str]]:
    """Per reason, like the JS page; a service without a `held` table says so, one holding nothing shows 0."""
    service = f'<span class="mono">{_e(s["service"])}</span>'
    if s["count"] is None:
        return [[service, NO_TABLE]]
    if not s["by_reason"]:
        return [[service, "0", "–", "–"]]
    return [
        [
            f'{service}<span class="held-reason">{_e(r["reason"].removeprefix("rule:"))}</span>',
            _e(_number(r["count"])),
            _e(duration(r["oldest_seconds"])),
            _e(_ends_in(r.get("expires_in_seconds"))),
        ]
        for r in s["by_reason"]
    ]


def _ends_in(seconds: float | None) -> str:
    """Negative: the wait is over and the service has not given the event its outcome yet."""
    return "over" if seconds is not None and seconds <= 0 else duration(seconds)


def _dead_letters(dlq: Sequence[Mapping[str, Any]] | None) -> str:
    if dlq is None:
        return '<p class="empty">could not be read</p>'
    rows = (
        [f'<span class="mono topic">{_e(t["topic"].removeprefix("fivecogs."))}</span>', _e(_number(t["waiting"])),
         _e(_number(t["total"]))]
        for t in dlq
    )  # fmt: skip
    return _table(["topic", "waiting", "total"], rows, (1, 2), "no dead-letter topics")
