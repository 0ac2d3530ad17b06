"""The `fivecogs lag` table: one per group, one row per partition, fitted to the terminal without ever dropping
a partition's reason."""

from __future__ import annotations

from dataclasses import replace

from rich import box
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from fivecogs_ops.lag.report import GroupReport, PartitionReport, Report

STYLE = {"OK": "green", "WARN": "yellow", "STALL": "bold red", "STOP": "bold red", "REWIND": "bold magenta"}
# Too narrow for every column and a `why` column: trend, then end make room; else the reason moves under its row
# and they come back as far as they fit. The reason itself is never dropped: it wraps.
DROPPABLE = ("trend", "end")
WHY_MIN_WIDTH = 24
MARKER = {"interpolated": "~"}  # seconds placed between samples; from the record's own timestamp: no marker


def render(report: Report, width: int = 80, every: bool = False) -> Group:
    """One table per group. Caught-up partitions (OK, lag 0) are one line under it unless `every`: with a partner
    topic per partner, they are most rows and say the least."""
    if not report.groups:
        return Group(Text("no consumer groups found", style="dim"))
    return Group(*(_fitting_table(g, width, every) for g in report.groups))


def _fitting_table(g: GroupReport, width: int, every: bool) -> RenderableType:
    shown = g if every else replace(g, partitions=[p for p in g.partitions if not _caught_up(p)])
    hidden = len(g.partitions) - len(shown.partitions)
    note = Text(f"{hidden} partitions caught up (--all-partitions lists them)", style="dim")
    if hidden and not shown.partitions:
        return Group(_title(g), Text.assemble("  all ", note), "")
    layouts = [(under, DROPPABLE[:n]) for under in (False, True) for n in range(len(DROPPABLE) + 1)]
    under, dropped = next((lay for lay in layouts if _needed(shown, *lay) <= width), layouts[-1])
    table = _group_table(shown, dropped, under)  # the narrowest, when nothing fits: rich shortens the rest
    if hidden:
        table.caption, table.caption_justify = note, "left"
    return table


def _caught_up(p: PartitionReport) -> bool:
    return p.status.name == "OK" and p.lag == 0


def _needed(g: GroupReport, under: bool, dropped: tuple[str, ...]) -> int:
    """Columns that never wrap at their full width, plus the `why` column's least."""
    wide = Console(width=10_000)
    bare = _group_table(g, dropped, under=True, reasons=False)
    return Measurement.get(wide, wide.options, bare).maximum + (0 if under else WHY_MIN_WIDTH + 3)


def _group_table(g: GroupReport, dropped: tuple[str, ...], under: bool, reasons: bool = True) -> Table:
    """One table per group, one row per partition, its reason in the last column or under the row."""
    table = Table(title=_title(g) if reasons else None, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("topic/partition", no_wrap=not under, overflow="fold")
    for column in ("committed", "end", "lag", "behind"):
        if column not in dropped:
            table.add_column(column, justify="right", no_wrap=True)
    if "trend" not in dropped:
        table.add_column("", no_wrap=True)  # the trend arrow
    table.add_column("status", no_wrap=True)
    if not under:
        table.add_column("why", style="dim", min_width=WHY_MIN_WIDTH)
    for p in g.partitions:
        table.add_row(*_cells(p, dropped, under if reasons else None))
    return table


def _title(g: GroupReport) -> Text:
    members = ", ".join(f"{m.client_id}@{m.host}" for m in g.members) or "no members"
    return Text.assemble(
        (g.group, "bold"), "  ", (g.status.name, STYLE[g.status.name]),
        f"  lag {g.lag:,} ({behind(g.lag_seconds, g.estimate)}) {g.trend.arrow}  ·  {g.state}: {members}",
    )  # fmt: skip


def _cells(p: PartitionReport, dropped: tuple[str, ...], under: bool | None) -> list[RenderableType]:
    """The row; its reason under the topic/partition (`under`), in the last cell, or nowhere (None: to measure)."""
    where = f"{p.topic}/{p.partition}"
    cells: list[RenderableType] = [Group(where, Padding(Text(p.reason, style="dim"), (0, 0, 0, 2))) if under else where]
    cells += [_n(p.committed)] + ([] if "end" in dropped else [_n(p.end)])
    cells += [_n(p.lag), behind(p.lag_seconds, p.estimate)]
    cells += [] if "trend" in dropped else [p.trend.arrow]
    return [*cells, Text(p.status.name, style=STYLE[p.status.name]), *([p.reason] if under is False else [])]


def behind(seconds: float | None, estimate: str) -> str:
    """Seconds behind, `~` in front when interpolated between samples rather than read from the record."""
    return "–" if seconds is None else MARKER.get(estimate, "") + duration(seconds)


def _n(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
