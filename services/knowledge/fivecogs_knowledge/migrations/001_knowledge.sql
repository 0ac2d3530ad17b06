-- Enterprises as inputs announced them (latest values), or as a batch of theirs told them first.
CREATE TABLE enterprises (
    enterprise_id  text PRIMARY KEY,
    province       text NOT NULL,
    sector         text NOT NULL
);

-- Produced batches: which enterprise makes which product. No foreign key to enterprises: inputs' batches and
-- registrations sit on different partitions, so a batch may be read before its enterprise's registration.
CREATE TABLE batches (
    batch_id       text PRIMARY KEY,
    enterprise_id  text NOT NULL,
    product_id     text NOT NULL,
    produced_on    date NOT NULL
);
CREATE INDEX batches_enterprise_product ON batches (enterprise_id, product_id);

CREATE TABLE trainings (
    training_id    text    PRIMARY KEY,
    enterprise_id  text    NOT NULL REFERENCES enterprises,
    topic          text    NOT NULL,
    participants   integer NOT NULL CHECK (participants >= 1),
    completed_on   date    NOT NULL
);
CREATE INDEX trainings_enterprise ON trainings (enterprise_id, completed_on);

CREATE TABLE certifications (
    certificate_id  text    PRIMARY KEY,
    product_id      text    NOT NULL,
    enterprise_id   text    NOT NULL REFERENCES enterprises,
    scheme          text    NOT NULL,
    level           integer CHECK (level BETWEEN 1 AND 5),
    valid_from      date    NOT NULL,
    valid_until     date    NOT NULL,
    CHECK (valid_until >= valid_from),
    CHECK ((scheme = 'otop_stars') = (level IS NOT NULL))
);
CREATE INDEX certifications_product ON certifications (product_id);
