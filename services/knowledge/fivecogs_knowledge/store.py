"""SQL of the knowledge service (schema `knowledge`): the batch's state (`KnowledgeState`), loaded for all its
events at once and written set-wise at its end."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from asyncpg import Record

from fivecogs_knowledge.domain import Batch, Certification, Enterprise, Training
from fivecogs_shared.batchstate import Key, Tables, named, parts
from fivecogs_shared.envelope import Envelope

ENTERPRISES, REGISTERED, BATCHES, PRODUCTS = "enterprises", "registered", "batches", "products"
TRAININGS, TRAINED, CERTIFICATES, CERTIFIED = "trainings", "trained", "certificates", "certified"
_CERTIFICATION_COLUMNS = "certificate_id, product_id, enterprise_id, scheme, level, valid_from, valid_until"
_TRAINING_COLUMNS = "training_id, enterprise_id, topic, participants, completed_on"


class KnowledgeState(Tables):
    """Rows by key, and three lists: each enterprise's products and trainings, each product's certificates."""

    def rows_of(self, reference: str) -> list[tuple[str, Key]] | None:
        if enterprise := parts(reference, "enterprise", 1):
            return [(ENTERPRISES, enterprise[0])]
        if product := parts(reference, "product", 2):
            return [(PRODUCTS, product[0])]
        return None

    async def prefetch(self, events: Sequence[Envelope]) -> None:
        batches = [e for e in events if hasattr(e.data, "batch_id")]
        grants = [e for e in events if hasattr(e.data, "certificate_id")]
        await self._load_enterprises(named(events, "enterprise_id"))
        await self._load_batches(named(batches, "batch_id"))
        await self._load_products(named(grants, "enterprise_id"))
        await self._load_trainings(named(events, "training_id"))
        await self._load_trained(named(batches, "enterprise_id"))
        await self._load_certificates(named(grants, "certificate_id"))
        await self._load_certified(named(batches, "product_id"))

    async def enterprise(self, enterprise_id: str) -> Enterprise | None:
        await self._load_enterprises([enterprise_id])
        found: Enterprise | None = self.get(ENTERPRISES, enterprise_id)
        return found

    def save_enterprise(self, e: Enterprise) -> None:
        """A registration replaces what was known: the latest values win."""
        self.put(ENTERPRISES, e.enterprise_id, e)
        self.put(REGISTERED, e.enterprise_id, e)

    async def know_enterprise(self, e: Enterprise) -> None:
        """Learnt from a batch: only fills a gap, never overrides what a registration said."""
        if await self.enterprise(e.enterprise_id) is None:
            self.put(ENTERPRISES, e.enterprise_id, e)

    async def save_batch(self, b: Batch) -> None:
        await self._load_batches([b.batch_id])
        if self.get(BATCHES, b.batch_id) is not None:
            return
        self.put(BATCHES, b.batch_id, b)
        products = self.get(PRODUCTS, b.enterprise_id)
        if products is not None and b.product_id not in products:
            self.put(PRODUCTS, b.enterprise_id, (*products, b.product_id))

    async def products_of(self, enterprise_id: str) -> set[str]:
        """The products of the enterprise's produced batches."""
        await self._load_products([enterprise_id])
        return set(self.get(PRODUCTS, enterprise_id))

    async def save_training(self, t: Training) -> None:
        """Keyed by training id: a training reported again replaces the earlier report rather than counting twice
        (and may move it to another enterprise)."""
        await self._load_trainings([t.training_id])
        earlier: Training | None = self.get(TRAININGS, t.training_id)
        if earlier is not None and earlier.enterprise_id != t.enterprise_id:
            self._list(TRAINED, earlier.enterprise_id, remove=t.training_id)
        self.put(TRAININGS, t.training_id, t)
        self._list(TRAINED, t.enterprise_id, add=t.training_id)

    async def trainings_of(self, enterprise_id: str) -> list[Training]:
        await self._load_trained([enterprise_id])
        trainings = [self.get(TRAININGS, tid) for tid in self.get(TRAINED, enterprise_id)]
        return sorted(trainings, key=lambda t: (t.completed_on, t.training_id))

    async def certification(self, certificate_id: str) -> Certification | None:
        await self._load_certificates([certificate_id])
        found: Certification | None = self.get(CERTIFICATES, certificate_id)
        return found

    def save_certification(self, c: Certification) -> None:
        self.put(CERTIFICATES, c.certificate_id, c)
        self._list(CERTIFIED, c.product_id, add=c.certificate_id)

    async def certifications_of(self, product_id: str) -> list[Certification]:
        await self._load_certified([product_id])
        return [self.get(CERTIFICATES, cid) for cid in sorted(self.get(CERTIFIED, product_id))]

    def _list(self, table: str, key: str, *, add: str | None = None, remove: str | None = None) -> None:
        """Keep a known list in step with a row that joined or left it (an unknown list is read whole later)."""
        ids = self.get(table, key)
        if ids is not None:
            kept = tuple(i for i in ids if i != remove)
            self.put(table, key, kept + ((add,) if add is not None and add not in kept else ()))

    # --- loading ------------------------------------------------------------------------------------------

    async def _load_enterprises(self, ids: Iterable[str]) -> None:
        sql = "SELECT enterprise_id, province, sector FROM enterprises WHERE enterprise_id = ANY($1::text[])"
        await self.fetch_missing(ENTERPRISES, ids, sql, "enterprise_id", lambda r: Enterprise(**dict(r)))

    async def _load_batches(self, ids: Iterable[str]) -> None:
        sql = "SELECT batch_id, enterprise_id, product_id, produced_on FROM batches WHERE batch_id = ANY($1::text[])"
        await self.fetch_missing(BATCHES, ids, sql, "batch_id", lambda r: Batch(**dict(r)))

    async def _load_products(self, enterprise_ids: Iterable[str]) -> None:
        if wanted := self.missing(PRODUCTS, enterprise_ids):
            rows = await self.conn.fetch(
                "SELECT DISTINCT enterprise_id, product_id FROM batches WHERE enterprise_id = ANY($1::text[])",
                wanted,
            )
            products = _by(rows, "enterprise_id", "product_id", wanted)
            for b in self.changed(BATCHES):  # produced in this batch, not in Postgres yet
                if b.enterprise_id in products and b.product_id not in products[b.enterprise_id]:
                    products[b.enterprise_id].append(b.product_id)
            self.loaded(PRODUCTS, {e: tuple(p) for e, p in products.items()})

    async def _load_trainings(self, ids: Iterable[str]) -> None:
        sql = f"SELECT {_TRAINING_COLUMNS} FROM trainings WHERE training_id = ANY($1::text[])"
        await self.fetch_missing(TRAININGS, ids, sql, "training_id", lambda r: Training(**dict(r)))

    async def _load_trained(self, enterprise_ids: Iterable[str]) -> None:
        if wanted := self.missing(TRAINED, enterprise_ids):
            rows = await self.conn.fetch(
                f"SELECT {_TRAINING_COLUMNS} FROM trainings WHERE enterprise_id = ANY($1::text[])", wanted
            )
            self.loaded(TRAININGS, {r["training_id"]: Training(**dict(r)) for r in rows})
            trained: dict[str, list[str]] = {e: [] for e in wanted}
            for training_id in {r["training_id"] for r in rows} | {t.training_id for t in self.changed(TRAININGS)}:
                t = self.get(TRAININGS, training_id)  # this batch's version, if it changed it
                if t.enterprise_id in trained:
                    trained[t.enterprise_id].append(training_id)
            self.loaded(TRAINED, {e: tuple(ids) for e, ids in trained.items()})

    async def _load_certificates(self, ids: Iterable[str]) -> None:
        if wanted := self.missing(CERTIFICATES, ids):
            # Grants of one certificate id may arrive keyed by different products, so on different partitions and
            # replicas: a transaction-scoped lock on each id makes the second one see the first.
            await self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('certificate:' || c, 0)) FROM unnest($1::text[]) c",
                wanted,
            )
            rows = await self.conn.fetch(
                f"SELECT {_CERTIFICATION_COLUMNS} FROM certifications WHERE certificate_id = ANY($1::text[])", wanted
            )
            self.loaded(CERTIFICATES, {r["certificate_id"]: Certification(**dict(r)) for r in rows}, wanted)

    async def _load_certified(self, product_ids: Iterable[str]) -> None:
        if wanted := self.missing(CERTIFIED, product_ids):
            rows = await self.conn.fetch(
                f"SELECT {_CERTIFICATION_COLUMNS} FROM certifications WHERE product_id = ANY($1::text[])", wanted
            )
            self.loaded(CERTIFICATES, {r["certificate_id"]: Certification(**dict(r)) for r in rows})
            certified = _by(rows, "product_id", "certificate_id", wanted)
            for c in self.changed(CERTIFICATES):
                if c.product_id in certified and c.certificate_id not in certified[c.product_id]:
                    certified[c.product_id].append(c.certificate_id)
            self.loaded(CERTIFIED, {p: tuple(ids) for p, ids in certified.items()})

    # --- writing ------------------------------------------------------------------------------------------

    async def flush(self) -> None:
        registered = {e.enterprise_id for e in self.changed(REGISTERED)}
        enterprises = [(e.enterprise_id, e.province, e.sector) for e in self.changed(ENTERPRISES)]
        await self.write(_SAVE_ENTERPRISE, [row for row in enterprises if row[0] in registered])
        await self.write(_KNOW_ENTERPRISE, [row for row in enterprises if row[0] not in registered])
        await self.write(
            _ADD_BATCH, [(b.batch_id, b.enterprise_id, b.product_id, b.produced_on) for b in self.changed(BATCHES)]
        )
        trainings = self.changed(TRAININGS)
        rows = [(t.training_id, t.enterprise_id, t.topic, t.participants, t.completed_on) for t in trainings]
        await self.write(_SAVE_TRAINING, rows)
        await self.write(_ADD_CERTIFICATION, [_certification_row(c) for c in self.changed(CERTIFICATES)])
        self.written()


def _by(rows: Sequence[Record], key: str, value: str, wanted: Iterable[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {k: [] for k in wanted}
    for row in rows:
        grouped[row[key]].append(row[value])
    return grouped


def _certification_row(c: Certification) -> tuple[object, ...]:
    return (c.certificate_id, c.product_id, c.enterprise_id, c.scheme, c.level, c.valid_from, c.valid_until)


_SAVE_ENTERPRISE = (
    "INSERT INTO enterprises (enterprise_id, province, sector) VALUES ($1, $2, $3) "
    "ON CONFLICT (enterprise_id) DO UPDATE SET province = EXCLUDED.province, sector = EXCLUDED.sector"
)
_KNOW_ENTERPRISE = _SAVE_ENTERPRISE.split(" DO UPDATE")[0] + " DO NOTHING"  # fills a gap only
_ADD_BATCH = (
    "INSERT INTO batches (batch_id, enterprise_id, product_id, produced_on) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (batch_id) DO NOTHING"
)
_SAVE_TRAINING = (
    f"INSERT INTO trainings ({_TRAINING_COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (training_id) DO UPDATE "
    "SET enterprise_id = EXCLUDED.enterprise_id, topic = EXCLUDED.topic, participants = EXCLUDED.participants, "
    "completed_on = EXCLUDED.completed_on"
)
_ADD_CERTIFICATION = f"INSERT INTO certifications ({_CERTIFICATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
