CREATE TABLE subscribers (
    subscriber_id  text PRIMARY KEY,
    network        text        NOT NULL,
    provinces      text[]      NOT NULL,  -- empty: every province
    topics         text[]      NOT NULL CHECK (cardinality(topics) >= 1),
    webhook_url    text,
    subscribed_at  timestamptz NOT NULL DEFAULT now()
);
-- Subscribers are looked up by topic for every event.
CREATE INDEX subscribers_topics ON subscribers USING gin (topics);

CREATE TABLE notices (
    notice_id         text PRIMARY KEY,  -- derived from (subscriber, subject event): a redelivery cannot add one
    subscriber_id     text        NOT NULL,
    network           text        NOT NULL,
    topic             text        NOT NULL,
    province          text        NOT NULL,
    subject_id        text        NOT NULL,
    subject_event_id  text        NOT NULL,
    product_ids       text[]      NOT NULL,
    summary           text        NOT NULL,
    published_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notices_subject_event ON notices (subject_event_id);

-- One row per notice to POST; written in the transaction that publishes the notice, drained by the worker.
CREATE TABLE webhook_deliveries (
    notice_id         text PRIMARY KEY REFERENCES notices,
    subscriber_id     text        NOT NULL,
    url               text        NOT NULL,
    body              bytea       NOT NULL,  -- exactly the bytes signed and sent
    status            text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_status_code  integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- Every attempt's outcome: an HTTP status, or the error that prevented one.
CREATE TABLE webhook_attempts (
    notice_id     text        NOT NULL REFERENCES webhook_deliveries,
    attempt       integer     NOT NULL CHECK (attempt >= 1),
    attempted_at  timestamptz NOT NULL,
    duration_ms   integer     NOT NULL,
    status_code   integer,
    error         text,
    PRIMARY KEY (notice_id, attempt),
    CHECK ((status_code IS NULL) <> (error IS NULL))
);
