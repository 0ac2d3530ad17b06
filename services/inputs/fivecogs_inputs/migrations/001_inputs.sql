CREATE TABLE enterprises (
    enterprise_id           text PRIMARY KEY,
    name                    text    NOT NULL,
    province                text    NOT NULL,
    sector                  text    NOT NULL,
    members                 integer NOT NULL CHECK (members >= 1),
    target_poor_households  integer NOT NULL CHECK (target_poor_households BETWEEN 0 AND members)
);

CREATE TABLE batches (
    batch_id       text PRIMARY KEY,
    enterprise_id  text NOT NULL REFERENCES enterprises,
    product_id     text,
    product_name   text,
    quantity       integer CHECK (quantity >= 1),
    unit           text,
    produced_on    date
);
CREATE INDEX batches_product ON batches (product_id);

CREATE TABLE deliveries (
    delivery_id  text           NOT NULL,
    batch_id     text           NOT NULL REFERENCES batches,
    position     integer        NOT NULL,
    item         text           NOT NULL,
    quantity     numeric(18, 3) NOT NULL,
    unit         text           NOT NULL,
    cost_thb     numeric(14, 2) NOT NULL CHECK (cost_thb >= 0),
    local_source boolean        NOT NULL,
    PRIMARY KEY (batch_id, delivery_id),
    UNIQUE (batch_id, position)
);
