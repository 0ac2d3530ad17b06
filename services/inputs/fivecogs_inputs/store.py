"""SQL of the inputs service (schema `inputs`): the batch's state (`InputsState`), loaded for all its events at
once and written set-wise at its end. Rows are loaded `FOR UPDATE` in key order, so concurrent batches on one
enterprise or production batch apply one after the other and never wait on each other in opposite orders."""

from __future__ import annotations

from collections.abc import Sequence

from asyncpg import Record

from fivecogs_inputs.domain import Batch, Delivery, Enterprise, Production
from fivecogs_shared.batchstate import Key, Tables, named, parts
from fivecogs_shared.db import Connection
from fivecogs_shared.envelope import Envelope
from fivecogs_shared.errors import int4

ENTERPRISES, BATCHES, OWNERS = "enterprises", "batches", "owners"


class InputsState(Tables):
    """Enterprises and batches by id, and which enterprise makes each product (derived from the batches)."""

    locked = frozenset({ENTERPRISES, BATCHES})

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self._stored: dict[str, set[str]] = {}  # the deliveries Postgres already has, by batch

    def rows_of(self, reference: str) -> list[tuple[str, Key]] | None:
        if enterprise := parts(reference, "enterprise", 1):
            return [(ENTERPRISES, enterprise[0])]
        if delivery := parts(reference, "delivery", 2):
            return [(BATCHES, delivery[0])]
        return None

    async def prefetch(self, events: Sequence[Envelope]) -> None:
        await self._load_enterprises(named(events, "enterprise_id"))
        await self._load_batches(named(events, "batch_id"))
        await self._load_owners(named(events, "product_id"))

    async def enterprise(self, enterprise_id: str) -> Enterprise | None:
        if not self.knows(ENTERPRISES, enterprise_id):
            await self._load_enterprises([enterprise_id])
        found: Enterprise | None = self.get(ENTERPRISES, enterprise_id)
        return found

    async def batch(self, batch_id: str) -> Batch | None:
        if not self.knows(BATCHES, batch_id):
            await self._load_batches([batch_id])
        found: Batch | None = self.get(BATCHES, batch_id)
        return found

    async def product_owner(self, product_id: str) -> str | None:
        if not self.knows(OWNERS, product_id):
            await self._load_owners([product_id])
        found: str | None = self.get(OWNERS, product_id)
        return found

    def save_enterprise(self, enterprise: Enterprise) -> None:
        int4(enterprise.members, "members")
        int4(enterprise.target_poor_households, "target_poor_households")
        self.put(ENTERPRISES, enterprise.enterprise_id, enterprise)

    def save_batch(self, batch: Batch) -> None:
        if batch.production is not None:
            int4(batch.production.quantity, "quantity")
        self.put(BATCHES, batch.batch_id, batch)
        if batch.production is not None and self.get(OWNERS, batch.production.product_id) is None:
            self.put(OWNERS, batch.production.product_id, batch.enterprise_id)

    async def _load_enterprises(self, ids: Sequence[str]) -> None:
        sql = (
            "SELECT enterprise_id, name, province, sector, members, target_poor_households "
            "FROM enterprises WHERE enterprise_id = ANY($1::text[]) ORDER BY enterprise_id FOR UPDATE"
        )
        await self.fetch_missing(ENTERPRISES, ids, sql, "enterprise_id", lambda row: Enterprise(**dict(row)))

    async def _load_batches(self, ids: Sequence[str]) -> None:
        wanted = self.missing(BATCHES, ids)
        if not wanted:
            return
        rows = await self.conn.fetch(
            "SELECT * FROM batches WHERE batch_id = ANY($1::text[]) ORDER BY batch_id FOR UPDATE", wanted
        )
        deliveries: dict[str, list[Delivery]] = {}
        for d in await self.conn.fetch(
            "SELECT batch_id, delivery_id, item, quantity, unit, cost_thb, local_source FROM deliveries "
            "WHERE batch_id = ANY($1::text[]) ORDER BY batch_id, position",
            [row["batch_id"] for row in rows],
        ):
            fields = dict(d)
            deliveries.setdefault(fields.pop("batch_id"), []).append(Delivery(**fields))
        batches = {row["batch_id"]: _batch(row, deliveries.get(row["batch_id"], [])) for row in rows}
        for batch_id, batch in batches.items():
            self._stored[batch_id] = {d.delivery_id for d in batch.deliveries}
        self.loaded(BATCHES, batches, wanted)

    async def _load_owners(self, product_ids: Sequence[str]) -> None:
        sql = (
            "SELECT DISTINCT ON (product_id) product_id, enterprise_id FROM batches "
            "WHERE product_id = ANY($1::text[]) ORDER BY product_id, batch_id"
        )
        await self.fetch_missing(OWNERS, product_ids, sql, "product_id", lambda row: row["enterprise_id"])

    async def flush(self) -> None:
        """Enterprises, then batches, then the deliveries Postgres does not have yet (the foreign keys' order)."""
        enterprises, batches = self.changed(ENTERPRISES), self.changed(BATCHES)
        if enterprises:
            await self.write(_SAVE_ENTERPRISE, [_enterprise_row(e) for e in enterprises])
        if batches:
            await self.write(_SAVE_BATCH, [_batch_row(b) for b in batches])
            new = [
                (d.delivery_id, b.batch_id, n, d.item, d.quantity, d.unit, d.cost_thb, d.local_source)
                for b in batches
                for n, d in enumerate(b.deliveries)
                if d.delivery_id not in self._stored.get(b.batch_id, set())
            ]
            await self.write(_ADD_DELIVERY, new)
            for b in batches:
                self._stored[b.batch_id] = {d.delivery_id for d in b.deliveries}
        self.written()


def _batch(row: Record, deliveries: list[Delivery]) -> Batch:
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
    return Batch(row["batch_id"], row["enterprise_id"], tuple(deliveries), production)


def _enterprise_row(e: Enterprise) -> tuple[object, ...]:
    return (e.enterprise_id, e.name, e.province, e.sector, e.members, e.target_poor_households)


def _batch_row(b: Batch) -> tuple[object, ...]:
    p = b.production
    produced = (p.product_id, p.product_name, p.quantity, p.unit, p.produced_on, p.lot, p.expires_on) if p else ()
    return (b.batch_id, b.enterprise_id, *(produced or (None,) * 7))


_SAVE_ENTERPRISE = (
    "INSERT INTO enterprises (enterprise_id, name, province, sector, members, target_poor_households) "
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (enterprise_id) DO UPDATE SET name = EXCLUDED.name, "
    "members = EXCLUDED.members, target_poor_households = EXCLUDED.target_poor_households"
)
_SAVE_BATCH = (
    "INSERT INTO batches (batch_id, enterprise_id, product_id, product_name, quantity, unit, produced_on, lot, "
    "expires_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (batch_id) DO UPDATE SET "
    "product_id = EXCLUDED.product_id, product_name = EXCLUDED.product_name, quantity = EXCLUDED.quantity, "
    "unit = EXCLUDED.unit, produced_on = EXCLUDED.produced_on, lot = EXCLUDED.lot, expires_on = EXCLUDED.expires_on"
)
_ADD_DELIVERY = (
    "INSERT INTO deliveries (delivery_id, batch_id, position, item, quantity, unit, cost_thb, local_source) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (batch_id, delivery_id) DO NOTHING"
)
