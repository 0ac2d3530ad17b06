"""SQL of the marketing service (schema `marketing`): the batch's state (`MarketingState`), loaded for all its
events at once and written set-wise at its end. Stock and orders are loaded `FOR UPDATE` in key order, so
concurrent orders and cancellations on one product apply one after the other and two transactions never wait
on each other's rows in opposite orders."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from asyncpg import Record

from fivecogs_marketing.domain.listing import Certification, Enterprise, Listing
from fivecogs_marketing.domain.orders import Order, OrderLine, Settlement
from fivecogs_marketing.domain.stock import Batch, Portion
from fivecogs_shared.batchstate import Key, Tables, named, parts
from fivecogs_shared.db import Connection
from fivecogs_shared.envelope import Envelope

ENTERPRISES, BATCHES, STOCK, CERTIFICATES, CERTIFIED = "enterprises", "batches", "stock", "certificates", "certified"
LISTINGS, ORDERS, SETTLEMENTS = "listings", "orders", "settlements"
_BATCH_COLUMNS = (
    "batch_id, product_id, enterprise_id, province, quantity, produced_on, cost_thb, non_local_cost_thb, taken"
)
_CERTIFICATION_COLUMNS = "certificate_id, product_id, scheme, level, valid_from, valid_until"


class MarketingState(Tables):
    """Rows by key, and two lists by product: the ids of its batches (`stock`) and of its certificates."""

    locked = frozenset({BATCHES, ORDERS})

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self._stored: dict[str, set[Any]] = {BATCHES: set(), ORDERS: set()}  # what Postgres has already

    def rows_of(self, reference: str) -> list[tuple[str, Key]] | None:
        if enterprise := parts(reference, "enterprise", 1):
            return [(ENTERPRISES, enterprise[0])]
        if product := parts(reference, "product", 2) or parts(reference, "stock", 1):
            return [(STOCK, product[-1])]
        if certified := parts(reference, "certification", 1):
            return [(CERTIFIED, certified[0])]
        if listing := parts(reference, "listing", 2):
            return [(LISTINGS, (listing[0], listing[1]))]
        if order := parts(reference, "order", 1):
            return [(ORDERS, order[0])]
        return None

    async def prefetch(self, events: Sequence[Envelope]) -> None:
        orders = [e for e in events if hasattr(e.data, "lines")]
        lines = [(e.data.channel, line.product_id) for e in orders for line in e.data.lines]  # type: ignore[attr-defined]
        products = set(named(events, "product_id")) | {product for _, product in lines}
        await self._load_enterprises(named([e for e in events if hasattr(e.data, "listing_id")], "enterprise_id"))
        await self._load_stock(products)
        await self._load_batches(named(events, "batch_id"))
        await self._load_certified(products)
        await self._load_certificates(named(events, "certificate_id"))
        await self._load_listings(lines)
        await self._load_orders(named(events, "order_id"))
        cancels = named([e for e in events if hasattr(e.data, "reason")], "order_id")
        cancelled = [self.get(ORDERS, order_id) for order_id in cancels]
        await self._load_batches([p.batch_id for order in cancelled if order for p in order.portions])

    # --- learnt from upstream -----------------------------------------------------------------------------

    def save_enterprise(self, e: Enterprise) -> None:
        self.put(ENTERPRISES, e.enterprise_id, e)

    async def enterprise(self, enterprise_id: str) -> Enterprise | None:
        await self._load_enterprises([enterprise_id])
        found: Enterprise | None = self.get(ENTERPRISES, enterprise_id)
        return found

    async def add_batch(self, batch: Batch) -> None:
        """A batch is assessed once; a repeat must not reset the units already sold from it."""
        await self._load_batches([batch.batch_id])
        if self.get(BATCHES, batch.batch_id) is not None:
            return
        self.put(BATCHES, batch.batch_id, batch)
        if self.knows(STOCK, batch.product_id):
            self.put(STOCK, batch.product_id, (*self.get(STOCK, batch.product_id), batch.batch_id))

    async def add_certification(self, c: Certification, enterprise_id: str) -> None:
        await self._load_certificates([c.certificate_id])
        if self.get(CERTIFICATES, c.certificate_id) is not None:
            return
        self.put(CERTIFICATES, c.certificate_id, (c, enterprise_id))
        if self.knows(CERTIFIED, c.product_id):
            self.put(CERTIFIED, c.product_id, (*self.get(CERTIFIED, c.product_id), c.certificate_id))

    async def makes_product(self, enterprise_id: str, product_id: str) -> bool:
        return any(b.enterprise_id == enterprise_id for b in (await self.stock([product_id])).get(product_id, []))

    async def certifications(self, product_id: str) -> list[Certification]:
        await self._load_certified([product_id])
        return [self.get(CERTIFICATES, cid)[0] for cid in sorted(self.get(CERTIFIED, product_id))]

    # --- listings -----------------------------------------------------------------------------------------

    def save_listing(self, listing: Listing) -> None:
        self.put(LISTINGS, (listing.channel, listing.product_id), listing)

    async def listings(self, channel: str, product_ids: Sequence[str]) -> dict[str, Listing]:
        await self._load_listings([(channel, p) for p in product_ids])
        found = {p: self.get(LISTINGS, (channel, p)) for p in product_ids}
        return {p: listing for p, listing in found.items() if listing is not None}

    # --- stock and orders ---------------------------------------------------------------------------------

    async def stock(self, product_ids: Sequence[str]) -> dict[str, list[Batch]]:
        """Every batch of the products, by product, oldest first."""
        await self._load_stock(product_ids)
        found = {p: [self.get(BATCHES, b) for b in self.get(STOCK, p)] for p in product_ids}
        return {p: sorted(batches, key=lambda b: b.fifo_key) for p, batches in found.items() if batches}

    async def batches(self, batch_ids: Iterable[str]) -> list[Batch]:
        ids = sorted(set(batch_ids))
        await self._load_batches(ids)
        return [b for b in (self.get(BATCHES, i) for i in ids) if b is not None]

    def save_stock(self, batches: Sequence[Batch]) -> None:
        for batch in batches:
            self.put(BATCHES, batch.batch_id, batch)

    async def order(self, order_id: str) -> Order | None:
        await self._load_orders([order_id])
        found: Order | None = self.get(ORDERS, order_id)
        return found

    def save_order(self, order: Order) -> None:
        self.put(ORDERS, order.order_id, order)

    def add_settlements(self, settlements: Sequence[Settlement]) -> None:
        for s in settlements:
            self.put(SETTLEMENTS, s.settlement_id, s)

    # --- loading ------------------------------------------------------------------------------------------

    async def _load_enterprises(self, ids: Iterable[str]) -> None:
        sql = "SELECT enterprise_id, province, sector FROM enterprises WHERE enterprise_id = ANY($1::text[])"
        await self.fetch_missing(ENTERPRISES, ids, sql, "enterprise_id", lambda r: Enterprise(**dict(r)))

    async def _load_stock(self, product_ids: Iterable[str]) -> None:
        if wanted := self.missing(STOCK, product_ids):
            rows = await self.conn.fetch(
                f"SELECT {_BATCH_COLUMNS} FROM batches WHERE product_id = ANY($1::text[]) ORDER BY batch_id FOR UPDATE",
                wanted,
            )
            self._batches_read(rows)
            ids: dict[str, list[str]] = {p: [] for p in wanted}
            for row in rows:
                ids[row["product_id"]].append(row["batch_id"])
            for batch in self.changed(BATCHES):  # assessed in this batch, not in Postgres yet
                if batch.product_id in ids and batch.batch_id not in ids[batch.product_id]:
                    ids[batch.product_id].append(batch.batch_id)
            self.loaded(STOCK, {p: tuple(batch_ids) for p, batch_ids in ids.items()})

    async def _load_batches(self, batch_ids: Iterable[str]) -> None:
        if wanted := self.missing(BATCHES, batch_ids):
            rows = await self.conn.fetch(
                f"SELECT {_BATCH_COLUMNS} FROM batches WHERE batch_id = ANY($1::text[]) ORDER BY batch_id FOR UPDATE",
                wanted,
            )
            self._batches_read(rows, wanted)

    def _batches_read(self, rows: Sequence[Record], asked: Sequence[str] = ()) -> None:
        self._stored[BATCHES] |= {row["batch_id"] for row in rows}
        self.loaded(BATCHES, {row["batch_id"]: Batch(**dict(row)) for row in rows}, asked)

    async def _load_certified(self, product_ids: Iterable[str]) -> None:
        if wanted := self.missing(CERTIFIED, product_ids):
            rows = await self.conn.fetch(
                f"SELECT {_CERTIFICATION_COLUMNS}, enterprise_id FROM certifications "
                "WHERE product_id = ANY($1::text[])",
                wanted,
            )
            self.loaded(CERTIFICATES, {r["certificate_id"]: _certification(r) for r in rows})
            ids: dict[str, list[str]] = {p: [] for p in wanted}
            for row in rows:
                ids[row["product_id"]].append(row["certificate_id"])
            for c, _ in self.changed(CERTIFICATES):
                if c.product_id in ids and c.certificate_id not in ids[c.product_id]:
                    ids[c.product_id].append(c.certificate_id)
            self.loaded(CERTIFIED, {p: tuple(cids) for p, cids in ids.items()})

    async def _load_certificates(self, certificate_ids: Iterable[str]) -> None:
        sql = (
            f"SELECT {_CERTIFICATION_COLUMNS}, enterprise_id FROM certifications WHERE certificate_id = ANY($1::text[])"
        )
        await self.fetch_missing(CERTIFICATES, certificate_ids, sql, "certificate_id", _certification)

    async def _load_listings(self, keys: Iterable[tuple[str, str]]) -> None:
        if wanted := self.missing(LISTINGS, keys):
            rows = await self.conn.fetch(
                "SELECT listing_id, l.product_id, enterprise_id, province, l.channel, unit_price_thb, listed_at "
                "FROM listings l JOIN unnest($1::text[], $2::text[]) AS k(channel, product_id) "
                "USING (channel, product_id)",
                [channel for channel, _ in wanted],
                [product for _, product in wanted],
            )
            self.loaded(LISTINGS, {(r["channel"], r["product_id"]): Listing(**dict(r)) for r in rows}, wanted)

    async def _load_orders(self, order_ids: Iterable[str]) -> None:
        if not (wanted := self.missing(ORDERS, order_ids)):
            return
        rows = await self.conn.fetch(
            "SELECT order_id, buyer_id, channel, placed_at, status, payment_id FROM orders "
            "WHERE order_id = ANY($1::text[]) ORDER BY order_id FOR UPDATE",
            wanted,
        )
        found = [row["order_id"] for row in rows]
        lines = await self.conn.fetch(
            "SELECT order_id, position, product_id, enterprise_id, province, quantity, unit_price_thb "
            "FROM order_lines WHERE order_id = ANY($1::text[]) ORDER BY order_id, position",
            found,
        )
        portions = await self.conn.fetch(
            "SELECT order_id, line_position, batch_id, quantity, cost_thb, non_local_cost_thb FROM portions "
            "WHERE order_id = ANY($1::text[]) ORDER BY order_id, line_position, position",
            found,
        )
        self._stored[ORDERS] |= set(found)
        lines_of, portions_of = _grouped(lines), _grouped(portions)
        orders = {
            r["order_id"]: _order(r, lines_of.get(r["order_id"], []), portions_of.get(r["order_id"], [])) for r in rows
        }
        self.loaded(ORDERS, orders, wanted)

    # --- writing ------------------------------------------------------------------------------------------

    async def flush(self) -> None:
        """In the foreign keys' order: batches and orders before the portions that name them."""
        await self.write(_SAVE_ENTERPRISE, [(e.enterprise_id, e.province, e.sector) for e in self.changed(ENTERPRISES)])
        batches, stored = self.changed(BATCHES), self._stored[BATCHES]
        new = [b for b in batches if b.batch_id not in stored]
        await self.write(_ADD_BATCH, [_batch_row(b) for b in new])
        await self.write(_TAKE, [(b.batch_id, b.taken) for b in batches if b.batch_id in stored])
        await self.write(_ADD_CERTIFICATION, [_certification_row(c, e) for c, e in self.changed(CERTIFICATES)])
        await self.write(_SAVE_LISTING, [_listing_row(listing) for listing in self.changed(LISTINGS)])
        orders, stored = self.changed(ORDERS), self._stored[ORDERS]
        placed = [o for o in orders if o.order_id not in stored]
        await self.write(_ADD_ORDER, [_order_row(o) for o in placed])
        await self.write(_ADD_LINE, [_line_row(o, n, li) for o in placed for n, li in enumerate(o.lines)])
        await self.write(_ADD_PORTION, _portions(placed))
        await self.write(_ORDER_STATUS, [(o.order_id, o.status, o.payment_id) for o in orders if o.order_id in stored])
        await self.write(_ADD_SETTLEMENT, [_settlement_row(s) for s in self.changed(SETTLEMENTS)])
        self._stored[BATCHES] |= {b.batch_id for b in new}
        self._stored[ORDERS] |= {o.order_id for o in placed}
        self.written()


def _certification(row: Record) -> tuple[Certification, str]:
    fields = dict(row)
    enterprise_id = fields.pop("enterprise_id")
    return Certification(**fields), enterprise_id


def _grouped(rows: Sequence[Record]) -> dict[str, list[Record]]:
    """Rows by their order id, in the order read."""
    grouped: dict[str, list[Record]] = {}
    for row in rows:
        grouped.setdefault(row["order_id"], []).append(row)
    return grouped


def _order(row: Record, lines: Sequence[Record], portions: Sequence[Record]) -> Order:
    """An order with its lines (`lines` and `portions` are the order's own)."""
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


def _batch_row(b: Batch) -> tuple[object, ...]:
    return (
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


def _certification_row(c: Certification, enterprise_id: str) -> tuple[object, ...]:
    return (c.certificate_id, c.product_id, enterprise_id, c.scheme, c.level, c.valid_from, c.valid_until)


def _listing_row(listing: Listing) -> tuple[object, ...]:
    return (
        listing.product_id,
        listing.channel,
        listing.listing_id,
        listing.enterprise_id,
        listing.province,
        listing.unit_price_thb,
        listing.listed_at,
    )


def _order_row(o: Order) -> tuple[object, ...]:
    return (o.order_id, o.buyer_id, o.channel, o.placed_at, o.status, o.payment_id)


def _line_row(o: Order, n: int, li: OrderLine) -> tuple[object, ...]:
    return (o.order_id, n, li.product_id, li.enterprise_id, li.province, li.quantity, li.unit_price_thb)


def _portions(orders: Sequence[Order]) -> list[tuple[object, ...]]:
    return [
        (o.order_id, n, m, p.batch_id, p.quantity, p.cost_thb, p.non_local_cost_thb)
        for o in orders
        for n, li in enumerate(o.lines)
        for m, p in enumerate(li.portions)
    ]


def _settlement_row(s: Settlement) -> tuple[object, ...]:
    return (
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


_SAVE_ENTERPRISE = (
    "INSERT INTO enterprises (enterprise_id, province, sector) VALUES ($1, $2, $3) "
    "ON CONFLICT (enterprise_id) DO UPDATE SET province = EXCLUDED.province, sector = EXCLUDED.sector"
)
_ADD_BATCH = (
    f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
    "ON CONFLICT (batch_id) DO NOTHING"
)
_TAKE = "UPDATE batches SET taken = $2 WHERE batch_id = $1"
_ADD_CERTIFICATION = (
    "INSERT INTO certifications (certificate_id, product_id, enterprise_id, scheme, level, valid_from, "
    "valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (certificate_id) DO NOTHING"
)
_SAVE_LISTING = (
    "INSERT INTO listings (product_id, channel, listing_id, enterprise_id, province, unit_price_thb, listed_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (product_id, channel) DO UPDATE SET "
    "listing_id = EXCLUDED.listing_id, enterprise_id = EXCLUDED.enterprise_id, province = EXCLUDED.province, "
    "unit_price_thb = EXCLUDED.unit_price_thb, listed_at = EXCLUDED.listed_at"
)
_ADD_ORDER = (
    "INSERT INTO orders (order_id, buyer_id, channel, placed_at, status, payment_id) VALUES ($1, $2, $3, $4, $5, $6)"
)
_ADD_LINE = (
    "INSERT INTO order_lines (order_id, position, product_id, enterprise_id, province, quantity, unit_price_thb) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
_ADD_PORTION = (
    "INSERT INTO portions (order_id, line_position, position, batch_id, quantity, cost_thb, non_local_cost_thb) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
_ORDER_STATUS = "UPDATE orders SET status = $2, payment_id = $3 WHERE order_id = $1"
_ADD_SETTLEMENT = (
    "INSERT INTO settlements (settlement_id, order_id, payment_id, enterprise_id, province, revenue_thb, "
    "cost_thb, non_local_cost_thb, product_ids, settled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)
