"""The connection handlers get on a batch's fast pass (no savepoint per event): it notes whether the handler
wrote, so that a rule violation raised after a write, which nothing there could undo, sends the batch to the
careful pass instead. Handlers refuse before they write (docs/performance.md); this keeps that a promise."""

from __future__ import annotations

from typing import Any, cast

from fivecogs_shared.db import Connection


class WatchedConnection:
    __slots__ = ("_conn", "wrote")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.wrote = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def _note(self, query: str) -> None:
        if not self.wrote and query.lstrip()[:6].upper() != "SELECT":  # SELECT … FOR UPDATE changes nothing
            self.wrote = True

    async def execute(self, query: str, *args: Any, **options: Any) -> Any:
        self._note(query)
        return await self._conn.execute(query, *args, **options)

    async def executemany(self, query: str, *args: Any, **options: Any) -> Any:
        self._note(query)
        return await self._conn.executemany(query, *args, **options)

    async def fetch(self, query: str, *args: Any, **options: Any) -> Any:
        self._note(query)
        return await self._conn.fetch(query, *args, **options)

    async def fetchrow(self, query: str, *args: Any, **options: Any) -> Any:
        self._note(query)
        return await self._conn.fetchrow(query, *args, **options)

    async def fetchval(self, query: str, *args: Any, **options: Any) -> Any:
        self._note(query)
        return await self._conn.fetchval(query, *args, **options)

    async def copy_records_to_table(self, *args: Any, **options: Any) -> Any:
        self.wrote = True
        return await self._conn.copy_records_to_table(*args, **options)


def watched(conn: Connection) -> Connection:
    """`conn`, watched: to handlers and stores it is the connection they always had."""
    return cast(Connection, WatchedConnection(conn))


def wrote(conn: Connection) -> bool:
    return isinstance(conn, WatchedConnection) and conn.wrote


def unwatch(conn: Connection) -> None:
    if isinstance(conn, WatchedConnection):
        conn.wrote = False
