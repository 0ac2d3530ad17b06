"""SQL of the marketing service (schema `marketing`). Stock rows are locked `FOR UPDATE` in batch_id order
before they change, so concurrent orders and cancellations on one product apply one after the other and two
transactions never wait on each other's batches in opposite orders."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from asyncpg import Record

from fivecogs_marketing.domain.listing import Certification, Enterprise, Listing
from fivecogs_marketing.domain.orders import Order, OrderLine, Settlement
from fivecogs_marketing.domain.stock import Batch, Portion
from fivecogs_shared.db import Connection

_BATCH_COLUMNS = (
    "batch_id, product_id, enterprise_id, province, quantity, produced_on, cost_thb, non_local_cost_thb, taken"
)


# --- learnt from upstream ---------------------------------------------------------------------------------


async def save_enterprise(conn: Connection, e: Enterprise) -> None:
    await conn.execute(
        "INSERT INTO enterprises (enterprise_id, province, sector) VALUES ($1, $2, $3) "
        "ON CONFLICT (enterprise_id) DO UPDATE SET province = EXCLUDED.province, sector = EXCLUDED.sector",
        e.enterprise_id,
        e.province,
        e.sector,
    )


async def load_enterprise(conn: Connection, enterprise_id: str) -> Enterprise | None:
    row = await conn.fetchrow(
        "SELECT enterprise_id, province, sector FROM enterprises WHERE enterprise_id = $1", enterprise_id
    )
    return Enterprise(**dict(row)) if row else None


async def add_batch(conn: Connection, b: Batch) -> None:
    # A batch is assessed once; a repeat must not reset the units already sold from it.
    await conn.execute(
        f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (batch_id) DO NOTHING",
        b.batch_id,
        b.product_id,
        b.enterprise_id,
        b.province,
        b.quantity,
        b.produced_on,
        b.cost_thb,
        b.non_local_cost_thb,
        b.taken,
    )


async def add_certification(conn: Connection, c: Certification, enterprise_id: str) -> None:
    await conn.execute(
        "INSERT INTO certifications (certificate_id, product_id, enterprise_id, scheme, level, valid_from, "
        "valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (certificate_id) DO NOTHING",
        c.certificate_id,
        c.product_id,
        enterprise_id,
        c.scheme,
        c.level,
        c.valid_from,
        c.valid_until,
    )


async def makes_product(conn: Connection, enterprise_id: str, product_id: str) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM batches WHERE enterprise_id = $1 AND product_id = $2)",
        enterprise_id,
        product_id,
    )
    return found


async def load_certifications(conn: Connection, product_id: str) -> list[Certification]:
    rows = await conn.fetch(
        "SELECT certificate_id, product_id, scheme, level, valid_from, valid_until FROM certifications "
        "WHERE product_id = $1 ORDER BY certificate_id",
        product_id,
    )
    return [Certification(**dict(row)) for row in rows]


# --- listings ---------------------------------------------------------------------------------------------


async def save_listing(conn: Connection, listing: Listing) -> None:
    await conn.execute(
        "INSERT INTO listings (product_id, channel, listing_id, enterprise_id, province, unit_price_thb, listed_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (product_id, channel) DO UPDATE SET "
        "listing_id = EXCLUDED.listing_id, enterprise_id = EXCLUDED.enterprise_id, province = EXCLUDED.province, "
        "unit_price_thb = EXCLUDED.unit_price_thb, listed_at = EXCLUDED.listed_at",
        listing.product_id,
        listing.channel,
        listing.listing_id,
        listing.enterprise_id,
        listing.province,
        listing.unit_price_thb,
        listing.listed_at,
    )


async def load_listings(conn: Connection, channel: str, product_ids: Sequence[str]) -> dict[str, Listing]:
    rows = await conn.fetch(
        "SELECT listing_id, product_id, enterprise_id, province, channel, unit_price_thb, listed_at "
        "FROM listings WHERE channel = $1 AND product_id = ANY($2::text[])",
        channel,
        list(product_ids),
    )
    return {row["product_id"]: Listing(**dict(row)) for row in rows}


# --- stock ------------------------------------------------------------------------------------------------


async def lock_stock(conn: Connection, product_ids: Sequence[str]) -> dict[str, list[Batch]]:
    """Every batch of the products, locked; by product, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_BATCH_COLUMNS} FROM batches WHERE product_id = ANY($1::text[]) ORDER BY batch_id FOR UPDATE",
        list(product_ids),
    )
    stock: dict[str, list[Batch]] = {}
    for batch in sorted((Batch(**dict(row)) for row in rows), key=lambda b: b.fifo_key):
        stock.setdefault(batch.product_id, []).append(batch)
    return stock


async def lock_batches(conn: Connection, batch_ids: Iterable[str]) -> list[Batch]:
    rows = await conn.fetch(
        f"SELECT {_BATCH_COLUMNS} FROM batches WHERE batch_id = ANY($1::text[]) ORDER BY batch_id FOR UPDATE",
        sorted(set(batch_ids)),
    )
    return [Batch(**dict(row)) for row in rows]


async def save_stock(conn: Connection, batches: Sequence[Batch]) -> None:
    await conn.executemany(
        "UPDATE batches SET taken = $2 WHERE batch_id = $1",
        sorted((b.batch_id, b.taken) for b in batches),
    )


# --- orders -----------------------------------------------------------------------------------------------


async def order_exists(conn: Connection, order_id: str) -> bool:
    found: bool = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM orders WHERE order_id = $1)", order_id)
    return found


async def add_order(conn: Connection, order: Order) -> None:
    await conn.execute(
        "INSERT INTO orders (order_id, buyer_id, channel, placed_at, status, payment_id) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        order.order_id,
        order.buyer_id,
        order.channel,
        order.placed_at,
        order.status,
        order.payment_id,
    )
    await conn.executemany(
        "INSERT INTO order_lines (order_id, position, product_id, enterprise_id, province, quantity, "
        "unit_price_thb) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            (order.order_id, n, li.product_id, li.enterprise_id, li.province, li.quantity, li.unit_price_thb)
            for n, li in enumerate(order.lines)
        ],
    )
    await conn.executemany(
        "INSERT INTO portions (order_id, line_position, position, batch_id, quantity, cost_thb, "
        "non_local_cost_thb) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            (order.order_id, n, m, p.batch_id, p.quantity, p.cost_thb, p.non_local_cost_thb)
            for n, li in enumerate(order.lines)
            for m, p in enumerate(li.portions)
        ],
    )


async def load_order(conn: Connection, order_id: str) -> Order | None:
    row = await conn.fetchrow(
        "SELECT order_id, buyer_id, channel, placed_at, status, payment_id FROM orders WHERE order_id = $1 FOR UPDATE",
        order_id,
    )
    if row is None:
        return None
    lines = await conn.fetch(
        "SELECT position, product_id, enterprise_id, province, quantity, unit_price_thb FROM order_lines "
        "WHERE order_id = $1 ORDER BY position",
        order_id,
    )
    portions = await conn.fetch(
        "SELECT line_position, batch_id, quantity, cost_thb, non_local_cost_thb FROM portions "
        "WHERE order_id = $1 ORDER BY line_position, position",
        order_id,
    )
    return Order(**dict(row), lines=tuple(_line(line, portions) for line in lines))


def _line(line: Record, portions: Sequence[Record]) -> OrderLine:
    taken = (p for p in portions if p["line_position"] == line["position"])
    return OrderLine(
        line["product_id"],
        line["enterprise_id"],
        line["province"],
        line["quantity"],
        line["unit_price_thb"],
        tuple(Portion(p["batch_id"], p["quantity"], p["cost_thb"], p["non_local_cost_thb"]) for p in taken),
    )


async def save_order_status(conn: Connection, order: Order) -> None:
    await conn.execute(
        "UPDATE orders SET status = $2, payment_id = $3 WHERE order_id = $1",
        order.order_id,
        order.status,
        order.payment_id,
    )


async def add_settlements(conn: Connection, settlements: Sequence[Settlement]) -> None:
    await conn.executemany(
        "INSERT INTO settlements (settlement_id, order_id, payment_id, enterprise_id, province, revenue_thb, "
        "cost_thb, non_local_cost_thb, product_ids, settled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [
            (
                s.settlement_id,
                s.order_id,
                s.payment_id,
                s.enterprise_id,
                s.province,
                s.revenue_thb,
                s.cost_thb,
                s.non_local_cost_thb,
                list(s.product_ids),
                s.settled_at,
            )
            for s in settlements
        ],
    )
