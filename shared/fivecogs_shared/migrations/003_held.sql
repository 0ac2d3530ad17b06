-- Held events: partner or upstream events that refer to something not applied yet. Each is kept whole (the
-- record as it arrived) with the reference it awaits, in the transaction that read it; it is applied when that
-- reference is, in arrival order (`seq`), or rejected once `expires_at` passes.
CREATE TABLE held (
    seq            bigserial   PRIMARY KEY,
    source         text        NOT NULL,
    event_id       text        NOT NULL,
    event_type     text        NOT NULL,
    awaits         text        NOT NULL,
    reason         text        NOT NULL,
    detail         text        NOT NULL,
    topic          text        NOT NULL,
    "partition"    integer     NOT NULL,
    "offset"       bigint      NOT NULL,
    key            bytea,
    value          bytea       NOT NULL,
    header_names   text[]      NOT NULL DEFAULT '{}',
    header_values  bytea[]     NOT NULL DEFAULT '{}',
    held_at        timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    UNIQUE (source, event_id)
);
CREATE INDEX held_awaits ON held (awaits, seq);
CREATE INDEX held_expiry ON held (expires_at, seq);
CREATE INDEX held_topic ON held (topic);  -- what one partner's topic may keep waiting is bounded
