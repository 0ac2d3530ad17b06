-- Parked outbox rows: rows Kafka refused for good (too large for the topic, an invalid topic). The relay moves
-- them here in the transaction that deletes the rows sent with them, so one bad row never blocks the rows behind
-- it; they stay until an operator deals with them (`fivecogs dlq list` shows them, docs/operations.md).
CREATE TABLE outbox_parked (
    id             bigint      PRIMARY KEY,  -- the row's id in the outbox
    topic          text        NOT NULL,
    key            bytea,
    value          bytea       NOT NULL,
    header_names   text[]      NOT NULL DEFAULT '{}',
    header_values  bytea[]     NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL,
    xid            xid8        NOT NULL,
    error          text        NOT NULL,
    parked_at      timestamptz NOT NULL DEFAULT now()
);
