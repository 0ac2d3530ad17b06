-- Outbox: events and dead letters written in the same transaction as the state change, relayed to Kafka later.
-- `xid` lets the relay wait for older transactions still in flight, so rows are published in id order even
-- when sequence values commit out of order.
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    topic          text        NOT NULL,
    key            bytea,
    value          bytea       NOT NULL,
    header_names   text[]      NOT NULL DEFAULT '{}',
    header_values  bytea[]     NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    xid            xid8        NOT NULL DEFAULT pg_current_xact_id()
);

-- Inbox: every event id this service has taken in, with a digest of its body so a repeat is told apart
-- from a conflicting reuse of the same id.
CREATE TABLE inbox (
    source       text        NOT NULL,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    digest       bytea       NOT NULL,
    outcome      text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_id)
);
