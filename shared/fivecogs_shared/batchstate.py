"""The state a batch works on: what its events touch, loaded in a few queries, changed in memory, written once.

A service that gives its `ServiceDefinition` a `state` factory has its handlers read and change aggregates
through a `BatchState` instead of SQL per event: `prefetch` loads every aggregate the batch's events name (one
query per table), each handler changes them in memory in offset order, and `flush` writes what changed,
set-wise, before the transaction commits (in the careful pass, after each event, inside its savepoint). An
event's changes are kept only when it is applied (`keep`); a refused one's are dropped (`drop`), so the fast
pass needs no savepoint per event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

from asyncpg import Record

from fivecogs_shared.db import Connection
from fivecogs_shared.envelope import Envelope

_ABSENT = object()
Key: TypeAlias = str | tuple[str, ...]  # a row's primary key


def parts(reference: str, kind: str, count: int) -> list[str] | None:
    """The ids in a reference `kind:<id>` (count 1, the id may hold colons) or `kind:<a>:<b>` (count 2, when
    neither holds one); None when it is not of that kind or cannot be split for sure."""
    prefix = f"{kind}:"
    if not reference.startswith(prefix):
        return None
    found = reference[len(prefix) :].split(":") if count > 1 else [reference[len(prefix) :]]
    return found if len(found) == count else None


def named(events: Sequence[Envelope], name: str) -> list[Any]:
    """The `name` field of each event's data that has one: the keys a prefetch loads."""
    return [getattr(event.data, name) for event in events if hasattr(event.data, name)]


class BatchState(Protocol):
    """What the batch processor asks of a service's state (see the module docstring)."""

    async def prefetch(self, events: Sequence[Envelope]) -> None: ...

    def keep(self) -> None: ...

    def drop(self) -> None: ...

    def refresh(self, reference: str) -> None: ...

    async def flush(self) -> None: ...


class Tables:
    """Rows by table and key. `loaded` rows came from Postgres; `put` rows are the current event's changes until
    `keep` makes them the batch's (and `changed`, for `flush`) or `drop` forgets them. None is a row known to
    be absent, so a miss is asked for once."""

    locked: frozenset[str] = frozenset()  # tables whose rows are read `FOR UPDATE`: no one else changes them

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._rows: dict[str, dict[Key, Any]] = defaultdict(dict)
        self._pending: dict[str, dict[Key, Any]] = defaultdict(dict)
        self._changed: dict[str, dict[Key, Any]] = defaultdict(dict)

    def knows(self, table: str, key: Key) -> bool:
        return key in self._pending[table] or key in self._rows[table]

    def get(self, table: str, key: Key) -> Any:
        found = self._pending[table].get(key, _ABSENT)
        return self._rows[table].get(key) if found is _ABSENT else found

    def missing(self, table: str, keys: Iterable[Key]) -> list[Any]:
        """The keys not known yet, once each and sorted (rows are locked in one order by every transaction)."""
        return sorted({key for key in keys if not self.knows(table, key)})

    def loaded(self, table: str, rows: Mapping[Key, Any], asked: Iterable[Key] = ()) -> None:
        """Rows read from Postgres, and the keys asked for that it did not have (known absent from now on)."""
        known = self._rows[table]
        for key in asked:
            known.setdefault(key, None)
        for key, row in rows.items():
            if key not in self._changed[table]:  # what this batch changed is newer than what Postgres has
                known[key] = row

    def forget(self, table: str, key: Key) -> None:
        """What was read of one row is stale (it was written by SQL of its own): it is read again when asked."""
        self._rows[table].pop(key, None)

    async def fetch_missing(
        self, table: str, keys: Iterable[Key], sql: str, key: str, make: Callable[[Record], Any] = lambda row: True
    ) -> None:
        """Ask once for the rows of `table` not known yet: `sql` takes the keys (sorted) as $1, each row found is
        `make(row)` under `row[key]`, and a key it did not find is known absent from then on."""
        if wanted := self.missing(table, keys):
            rows = await self.conn.fetch(sql, wanted)
            self.loaded(table, {row[key]: make(row) for row in rows}, wanted)

    async def write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        """One statement for many rows (none: no round trip)."""
        if rows:
            await self.conn.executemany(sql, rows)

    def put(self, table: str, key: Key, row: Any) -> None:
        self._pending[table][key] = row

    def keep(self) -> None:
        """The current event was applied: its changes are the batch's, to be written by `flush`."""
        for table, rows in self._pending.items():
            self._rows[table].update(rows)
            self._changed[table].update(rows)
        self._pending.clear()

    def drop(self) -> None:
        self._pending.clear()

    def refresh(self, reference: str) -> None:
        """Forget what another transaction may have committed since it was read, so it is asked again: the rows
        the awaited reference names (`rows_of`); if it names none, rows found absent and every row of a table
        not in `locked` (those this transaction read `FOR UPDATE`). What this batch changed stays."""
        named = self.rows_of(reference)
        if named is not None:
            for table, key in named:
                if key not in self._changed[table]:
                    self._rows[table].pop(key, None)
            return
        for table, rows in self._rows.items():
            changed, locked = self._changed[table], table in self.locked
            for key in [k for k, row in rows.items() if k not in changed and (row is None or not locked)]:
                del rows[key]

    def rows_of(self, reference: str) -> list[tuple[str, Key]] | None:
        """The rows whose existence decides a reference (`enterprise:E1` → the enterprise's row); None: unknown."""
        return None

    def changed(self, table: str) -> list[Any]:
        """The table's rows to write, in key order: the batch's changes and the current event's."""
        rows = self._changed[table] | self._pending[table]
        return [rows[key] for key in sorted(rows)]

    def written(self) -> None:
        """`flush` wrote every change (the current event's too, which is then kept)."""
        self.keep()
        self._changed.clear()
