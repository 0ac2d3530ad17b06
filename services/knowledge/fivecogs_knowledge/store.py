"""SQL of the knowledge service (schema `knowledge`)."""

from __future__ import annotations

from fivecogs_knowledge.domain import Batch, Certification, Enterprise, Training
from fivecogs_shared.db import Connection


async def load_enterprise(conn: Connection, enterprise_id: str) -> Enterprise | None:
    row = await conn.fetchrow(
        "SELECT enterprise_id, province, sector FROM enterprises WHERE enterprise_id = $1", enterprise_id
    )
    return Enterprise(**dict(row)) if row else None


async def save_enterprise(conn: Connection, e: Enterprise) -> None:
    """A registration replaces what was known: the latest values win."""
    await conn.execute(
        "INSERT INTO enterprises (enterprise_id, province, sector) VALUES ($1, $2, $3) "
        "ON CONFLICT (enterprise_id) DO UPDATE SET province = EXCLUDED.province, sector = EXCLUDED.sector",
        e.enterprise_id,
        e.province,
        e.sector,
    )


async def know_enterprise(conn: Connection, e: Enterprise) -> None:
    """Learnt from a batch: only fills a gap, never overrides what a registration said."""
    await conn.execute(
        "INSERT INTO enterprises (enterprise_id, province, sector) VALUES ($1, $2, $3) "
        "ON CONFLICT (enterprise_id) DO NOTHING",
        e.enterprise_id,
        e.province,
        e.sector,
    )


async def save_batch(conn: Connection, b: Batch) -> None:
    await conn.execute(
        "INSERT INTO batches (batch_id, enterprise_id, product_id, produced_on) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (batch_id) DO NOTHING",
        b.batch_id,
        b.enterprise_id,
        b.product_id,
        b.produced_on,
    )


async def products_of(conn: Connection, enterprise_id: str) -> set[str]:
    """The products of the enterprise's produced batches."""
    rows = await conn.fetch("SELECT DISTINCT product_id FROM batches WHERE enterprise_id = $1", enterprise_id)
    return {row["product_id"] for row in rows}


async def save_training(conn: Connection, t: Training) -> None:
    """Keyed by training id: a training reported again replaces the earlier report rather than counting twice."""
    await conn.execute(
        "INSERT INTO trainings (training_id, enterprise_id, topic, participants, completed_on) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (training_id) DO UPDATE SET enterprise_id = EXCLUDED.enterprise_id, "
        "topic = EXCLUDED.topic, participants = EXCLUDED.participants, completed_on = EXCLUDED.completed_on",
        t.training_id,
        t.enterprise_id,
        t.topic,
        t.participants,
        t.completed_on,
    )


async def trainings_of(conn: Connection, enterprise_id: str) -> list[Training]:
    rows = await conn.fetch(
        "SELECT training_id, enterprise_id, topic, participants, completed_on FROM trainings "
        "WHERE enterprise_id = $1 ORDER BY completed_on, training_id",
        enterprise_id,
    )
    return [Training(**dict(row)) for row in rows]


async def load_certification(conn: Connection, certificate_id: str) -> Certification | None:
    # Grants of one certificate id may arrive keyed by different products, so on different partitions and
    # replicas: a transaction-scoped lock on the id makes the second one see the first.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('certificate:' || $1, 0))", certificate_id)
    row = await conn.fetchrow(
        f"SELECT {_CERTIFICATION_COLUMNS} FROM certifications WHERE certificate_id = $1", certificate_id
    )
    return Certification(**dict(row)) if row else None


async def save_certification(conn: Connection, c: Certification) -> None:
    await conn.execute(
        f"INSERT INTO certifications ({_CERTIFICATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        c.certificate_id,
        c.product_id,
        c.enterprise_id,
        c.scheme,
        c.level,
        c.valid_from,
        c.valid_until,
    )


async def certifications_of(conn: Connection, product_id: str) -> list[Certification]:
    rows = await conn.fetch(
        f"SELECT {_CERTIFICATION_COLUMNS} FROM certifications WHERE product_id = $1 ORDER BY certificate_id",
        product_id,
    )
    return [Certification(**dict(row)) for row in rows]


_CERTIFICATION_COLUMNS = "certificate_id, product_id, enterprise_id, scheme, level, valid_from, valid_until"
