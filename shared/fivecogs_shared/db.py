"""Postgres: one schema per service, a pool whose search_path is that schema, and ordered SQL migrations.

Every service applies the shared migrations (outbox, inbox) and then its own `migrations/NNN_name.sql`, each
once, under an advisory lock so that two replicas starting together do not race.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# What handlers and stores receive: a plain connection or one borrowed from the pool.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy

SHARED_MIGRATIONS = resources.files("fivecogs_shared") / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


async def create_pool(dsn: str, schema: str, *, min_size: int = 1, max_size: int = 5) -> asyncpg.Pool:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"unsafe schema name {schema!r}")
    await ensure_schema(dsn, schema)
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": f"fivecogs-{schema}"},
    )
    assert pool is not None
    return pool


async def ensure_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    finally:
        await conn.close()


def _migration_files(folder: Path | resources.abc.Traversable) -> list[tuple[str, str]]:
    files = sorted((entry.name, entry.read_text()) for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return files


async def migrate(pool: asyncpg.Pool, schema: str, service_migrations: Path) -> list[str]:
    """Apply what is not applied yet; returns the names applied now."""
    lock_key = int.from_bytes(hashlib.sha256(f"migrate:{schema}".encode()).digest()[:8], "big", signed=True)
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz "
                "NOT NULL DEFAULT now())"
            )
            done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
            plan = [(f"shared/{n}", sql) for n, sql in _migration_files(SHARED_MIGRATIONS)]
            plan += [(f"{schema}/{n}", sql) for n, sql in _migration_files(service_migrations)]
            for name, sql in plan:
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                applied_now.append(name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    return applied_now
