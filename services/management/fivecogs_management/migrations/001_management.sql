-- Facts management keeps; reports are aggregated from them at query time, so the order in which events
-- arrive through different topics does not change the result.

-- Shares are plain numeric: they keep the digits the partner wrote ("0.5" stays "0.5" in distribution.made).
CREATE TABLE distribution_policies (
    province              text PRIMARY KEY,
    members_share         numeric NOT NULL CHECK (members_share BETWEEN 0 AND 1),
    community_fund_share  numeric NOT NULL CHECK (community_fund_share BETWEEN 0 AND 1),
    reinvest_share        numeric NOT NULL CHECK (reinvest_share BETWEEN 0 AND 1),
    CHECK (members_share + community_fund_share + reinvest_share = 1)
);

-- Latest registration of each enterprise, as inputs tells it.
CREATE TABLE enterprises (
    enterprise_id           text PRIMARY KEY,
    name                    text    NOT NULL,
    province                text    NOT NULL,
    region                  text    NOT NULL,
    sector                  text    NOT NULL,
    members                 integer NOT NULL,
    target_poor_households  integer NOT NULL
);
CREATE INDEX enterprises_province ON enterprises (province);
CREATE INDEX enterprises_region ON enterprises (region);

CREATE TABLE settlements (
    settlement_id       text PRIMARY KEY,
    order_id            text           NOT NULL,
    enterprise_id       text           NOT NULL,
    province            text           NOT NULL,
    revenue_thb         numeric(14, 2) NOT NULL,
    cost_thb            numeric(14, 2) NOT NULL,
    non_local_cost_thb  numeric(14, 2) NOT NULL,
    product_ids         text[]         NOT NULL,
    settled_at          timestamptz    NOT NULL,
    event_id            text           NOT NULL
);
CREATE INDEX settlements_enterprise ON settlements (enterprise_id);

CREATE TABLE distributions (
    distribution_id       text PRIMARY KEY,
    settlement_id         text           NOT NULL UNIQUE REFERENCES settlements,
    enterprise_id         text           NOT NULL,
    province              text           NOT NULL,
    margin_thb            numeric(14, 2) NOT NULL CHECK (margin_thb > 0),
    members_thb           numeric(14, 2) NOT NULL,
    community_fund_thb    numeric(14, 2) NOT NULL,
    reinvest_thb          numeric(14, 2) NOT NULL,
    members_share         numeric        NOT NULL,
    community_fund_share  numeric        NOT NULL,
    reinvest_share        numeric        NOT NULL,
    event_id              text           NOT NULL,
    CHECK (members_thb + community_fund_thb + reinvest_thb = margin_thb)
);
CREATE INDEX distributions_enterprise ON distributions (enterprise_id);

CREATE TABLE notices (
    notice_id  text PRIMARY KEY,
    province   text NOT NULL,
    region     text NOT NULL,
    topic      text NOT NULL,
    event_id   text NOT NULL
);
CREATE INDEX notices_province ON notices (province);
CREATE INDEX notices_region ON notices (region);

-- Which product a batch made: deliveries name only their batch.
CREATE TABLE batches (
    batch_id    text PRIMARY KEY,
    product_id  text NOT NULL
);
CREATE INDEX batches_product ON batches (product_id);

-- The products of each accepted order, so a cancellation (which names only the order) reaches them.
CREATE TABLE order_lines (
    order_id       text NOT NULL,
    product_id     text NOT NULL,
    enterprise_id  text NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

-- One row per event that touched a product (or, for deliveries, its batch).
CREATE TABLE journey_steps (
    subject_kind   text        NOT NULL CHECK (subject_kind IN ('product', 'batch')),
    subject_id     text        NOT NULL,
    event_id       text        NOT NULL,
    step           text        NOT NULL,
    what           text        NOT NULL,
    why            text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    province       text,
    enterprise_id  text,
    PRIMARY KEY (subject_kind, subject_id, event_id)
);
