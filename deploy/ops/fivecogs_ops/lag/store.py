"""Samples kept between runs, so one `fivecogs lag` call is judged against the calls before it.

A small SQLite file (`.stack/lag-samples.sqlite3` by default, FIVECOGS_LAG_STORE overrides) holding the last
two hours; older rows are deleted on every write, so it stays a few megabytes however long the page runs. Beside
them, the timestamps of the records lagging groups wait at, so a watch or the page reads each record once.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from fivecogs_ops.lag.sampling import Sample

KEEP_SECONDS = 2 * 3600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, t REAL NOT NULL,
    committed INTEGER, end_offset INTEGER NOT NULL, members INTEGER
);
CREATE INDEX IF NOT EXISTS samples_by_group ON samples (grp, t);
CREATE TABLE IF NOT EXISTS record_times (
    topic TEXT NOT NULL, part INTEGER NOT NULL, record_offset INTEGER NOT NULL, ts REAL, read_at REAL NOT NULL,
    PRIMARY KEY (topic, part, record_offset)
);
"""
# A record that could not be read (ts NULL) is asked for again after this long; one that was read never is.
RETRY_UNREAD_SECONDS = 60.0


def default_path() -> Path:
    if path := os.environ.get("FIVECOGS_LAG_STORE"):
        return Path(path)
    from fivecogs_ops.stack import LocalStack, StackError

    try:
        return LocalStack().dir / "lag-samples.sqlite3"
    except StackError:  # outside a checkout: keep them beside the user's other state
        return Path.home() / ".cache" / "fivecogs" / "lag-samples.sqlite3"


class SampleStore:
    def __init__(self, path: Path | None = None, keep_seconds: float = KEEP_SECONDS) -> None:
        self.path = path or default_path()
        self.keep_seconds = keep_seconds
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            if "members" not in {row[1] for row in db.execute("PRAGMA table_info(samples)")}:
                db.execute("ALTER TABLE samples ADD COLUMN members INTEGER")  # a file from before members were kept

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # The page's sampler and a `fivecogs lag` call may write at once: wait for the lock instead of failing.
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            yield db

    def add(self, samples: Iterable[Sample]) -> None:
        rows = [(s.group, s.topic, s.partition, s.time, s.committed, s.end, s.members) for s in samples]
        if not rows:
            return
        newest = max(row[3] for row in rows)
        with self._connect() as db:
            db.executemany(
                "INSERT INTO samples (grp, topic, part, t, committed, end_offset, members) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("DELETE FROM samples WHERE t < ?", (newest - self.keep_seconds,))

    def history(self, groups: Iterable[str], since: float) -> list[Sample]:
        """Every sample of these groups from `since` on, oldest first."""
        names = sorted(set(groups))
        if not names:
            return []
        marks = ", ".join("?" for _ in names)
        with self._connect() as db:
            rows = db.execute(
                f"SELECT grp, topic, part, t, committed, end_offset, members FROM samples "
                f"WHERE grp IN ({marks}) AND t >= ? ORDER BY t",
                [*names, since],
            ).fetchall()
        return [Sample(*row) for row in rows]

    def record_times(self, wanted: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int, int], float | None]:
        """The cached timestamps of these (topic, partition, offset) records; None where reading one failed lately."""
        keys = set(wanted)
        if not keys:
            return {}
        retry_after = time.time() - RETRY_UNREAD_SECONDS
        with self._connect() as db:
            db.execute("CREATE TEMP TABLE wanted (topic TEXT, part INTEGER, record_offset INTEGER)")
            db.executemany("INSERT INTO wanted VALUES (?, ?, ?)", sorted(keys))
            rows = db.execute(
                "SELECT r.topic, r.part, r.record_offset, r.ts FROM record_times r "
                "JOIN wanted USING (topic, part, record_offset) WHERE r.ts IS NOT NULL OR r.read_at >= ?",
                (retry_after,),
            ).fetchall()
        return {(topic, part, offset): ts for topic, part, offset, ts in rows}

    def add_record_times(self, read: dict[tuple[str, int, int], float | None]) -> None:
        now = time.time()
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO record_times VALUES (?, ?, ?, ?, ?)",
                [(topic, part, offset, ts, now) for (topic, part, offset), ts in read.items()],
            )
            # Bounded like the samples; a topic recreated under the same name also gets fresh times this way.
            db.execute("DELETE FROM record_times WHERE read_at < ?", (now - self.keep_seconds,))
