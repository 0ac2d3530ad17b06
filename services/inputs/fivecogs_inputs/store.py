"""SQL of the inputs service (schema `inputs`). Loads take a row lock so concurrent events on one batch or
enterprise apply one after the other."""

from __future__ import annotations

from fivecogs_inputs.domain import Batch, Delivery, Enterprise, Production
from fivecogs_shared.db import Connection


async def load_enterprise(conn: Connection, enterprise_id: str) -> Enterprise | None:
    row = await conn.fetchrow(
        "SELECT enterprise_id, name, province, sector, members, target_poor_households "
        "FROM enterprises WHERE enterprise_id = $1 FOR UPDATE",
        enterprise_id,
    )
    return Enterprise(**dict(row)) if row else None


async def save_enterprise(conn: Connection, e: Enterprise) -> None:
    await conn.execute(
        "INSERT INTO enterprises (enterprise_id, name, province, sector, members, target_poor_households) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (enterprise_id) DO UPDATE SET name = EXCLUDED.name, "
        "members = EXCLUDED.members, target_poor_households = EXCLUDED.target_poor_households",
        e.enterprise_id,
        e.name,
        e.province,
        e.sector,
        e.members,
        e.target_poor_households,
    )


async def load_batch(conn: Connection, batch_id: str) -> Batch | None:
    row = await conn.fetchrow("SELECT * FROM batches WHERE batch_id = $1 FOR UPDATE", batch_id)
    if row is None:
        return None
    deliveries = await conn.fetch(
        "SELECT delivery_id, item, quantity, unit, cost_thb, local_source FROM deliveries "
        "WHERE batch_id = $1 ORDER BY position",
        batch_id,
    )
    production = (
        Production(
            row["product_id"],
            row["product_name"],
            row["quantity"],
            row["unit"],
            row["produced_on"],
            row["lot"],
            row["expires_on"],
        )
        if row["product_id"] is not None
        else None
    )
    return Batch(
        batch_id=row["batch_id"],
        enterprise_id=row["enterprise_id"],
        deliveries=tuple(Delivery(**dict(d)) for d in deliveries),
        production=production,
    )


async def save_batch(conn: Connection, batch: Batch) -> None:
    p = batch.production
    await conn.execute(
        "INSERT INTO batches (batch_id, enterprise_id, product_id, product_name, quantity, unit, produced_on, lot, "
        "expires_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (batch_id) DO UPDATE SET "
        "product_id = EXCLUDED.product_id, product_name = EXCLUDED.product_name, quantity = EXCLUDED.quantity, "
        "unit = EXCLUDED.unit, produced_on = EXCLUDED.produced_on, lot = EXCLUDED.lot, "
        "expires_on = EXCLUDED.expires_on",
        batch.batch_id,
        batch.enterprise_id,
        p.product_id if p else None,
        p.product_name if p else None,
        p.quantity if p else None,
        p.unit if p else None,
        p.produced_on if p else None,
        p.lot if p else None,
        p.expires_on if p else None,
    )
    await conn.executemany(
        "INSERT INTO deliveries (delivery_id, batch_id, position, item, quantity, unit, cost_thb, local_source) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (batch_id, delivery_id) DO NOTHING",
        [
            (d.delivery_id, batch.batch_id, n, d.item, d.quantity, d.unit, d.cost_thb, d.local_source)
            for n, d in enumerate(batch.deliveries)
        ],
    )


async def product_owner(conn: Connection, product_id: str) -> str | None:
    owner: str | None = await conn.fetchval(
        "SELECT enterprise_id FROM batches WHERE product_id = $1 LIMIT 1", product_id
    )
    return owner
