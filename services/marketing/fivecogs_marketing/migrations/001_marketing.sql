-- What marketing learns from upstream cogs.
CREATE TABLE enterprises (
    enterprise_id  text PRIMARY KEY,
    province       text NOT NULL,
    sector         text NOT NULL
);

CREATE TABLE batches (
    batch_id            text PRIMARY KEY,
    product_id          text           NOT NULL,
    enterprise_id       text           NOT NULL,
    province            text           NOT NULL,
    quantity            integer        NOT NULL CHECK (quantity >= 1),
    produced_on         date           NOT NULL,
    cost_thb            numeric(14, 2) NOT NULL CHECK (cost_thb >= 0),
    non_local_cost_thb  numeric(14, 2) NOT NULL CHECK (non_local_cost_thb BETWEEN 0 AND cost_thb),
    -- units held by accepted orders that are not cancelled; stock is quantity - taken
    taken               integer        NOT NULL DEFAULT 0 CHECK (taken BETWEEN 0 AND quantity)
);
CREATE INDEX batches_fifo ON batches (product_id, produced_on, batch_id);

CREATE TABLE certifications (
    certificate_id  text PRIMARY KEY,
    product_id      text    NOT NULL,
    enterprise_id   text    NOT NULL,
    scheme          text    NOT NULL,
    level           integer CHECK (level BETWEEN 1 AND 5),
    valid_from      date    NOT NULL,
    valid_until     date    NOT NULL CHECK (valid_until >= valid_from)
);
CREATE INDEX certifications_product ON certifications (product_id);

-- Marketing's own state.
CREATE TABLE listings (
    product_id      text           NOT NULL,
    channel         text           NOT NULL,
    listing_id      text           NOT NULL,  -- of the latest accepted request
    enterprise_id   text           NOT NULL,
    province        text           NOT NULL,
    unit_price_thb  numeric(14, 2) NOT NULL CHECK (unit_price_thb > 0),
    listed_at       timestamptz    NOT NULL,
    PRIMARY KEY (product_id, channel)
);

CREATE TABLE orders (
    order_id    text        PRIMARY KEY,
    buyer_id    text        NOT NULL,
    channel     text        NOT NULL,
    placed_at   timestamptz NOT NULL,
    status      text        NOT NULL CHECK (status IN ('open', 'cancelled', 'paid')),
    payment_id  text
);

CREATE TABLE order_lines (
    order_id        text           NOT NULL REFERENCES orders,
    position        integer        NOT NULL,
    product_id      text           NOT NULL,
    enterprise_id   text           NOT NULL,
    province        text           NOT NULL,
    quantity        integer        NOT NULL CHECK (quantity >= 1),
    unit_price_thb  numeric(14, 2) NOT NULL CHECK (unit_price_thb > 0),
    PRIMARY KEY (order_id, position)
);

CREATE TABLE portions (
    order_id            text           NOT NULL,
    line_position       integer        NOT NULL,
    position            integer        NOT NULL,
    batch_id            text           NOT NULL REFERENCES batches,
    quantity            integer        NOT NULL CHECK (quantity >= 1),
    cost_thb            numeric(14, 2) NOT NULL CHECK (cost_thb >= 0),
    non_local_cost_thb  numeric(14, 2) NOT NULL CHECK (non_local_cost_thb BETWEEN 0 AND cost_thb),
    PRIMARY KEY (order_id, line_position, position),
    FOREIGN KEY (order_id, line_position) REFERENCES order_lines (order_id, position)
);

CREATE TABLE settlements (
    settlement_id       text           PRIMARY KEY,  -- '<order_id>:<enterprise_id>'
    order_id            text           NOT NULL REFERENCES orders,
    payment_id          text           NOT NULL,
    enterprise_id       text           NOT NULL,
    province            text           NOT NULL,
    revenue_thb         numeric(14, 2) NOT NULL,
    cost_thb            numeric(14, 2) NOT NULL,
    non_local_cost_thb  numeric(14, 2) NOT NULL,
    product_ids         text[]         NOT NULL,
    settled_at          timestamptz    NOT NULL
);
