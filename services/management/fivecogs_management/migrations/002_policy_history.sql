-- A policy takes effect at its event's ce_time, and a settlement is distributed by the policy in force at its
-- own settled_at. Deciding by event time, not by arrival order, makes a rebuild from the log (where topics
-- interleave differently) give the same distributions as the first run.
CREATE TABLE policy_history (
    province              text        NOT NULL,
    effective_at          timestamptz NOT NULL,
    event_id              text        NOT NULL,
    received              bigserial,  -- of two policies taking effect at the same moment, the later received wins
    members_share         numeric     NOT NULL CHECK (members_share BETWEEN 0 AND 1),
    community_fund_share  numeric     NOT NULL CHECK (community_fund_share BETWEEN 0 AND 1),
    reinvest_share        numeric     NOT NULL CHECK (reinvest_share BETWEEN 0 AND 1),
    CHECK (members_share + community_fund_share + reinvest_share = 1),
    PRIMARY KEY (province, effective_at, event_id)
);
INSERT INTO policy_history (province, effective_at, event_id, members_share, community_fund_share, reinvest_share)
SELECT province, '-infinity', 'before-history', members_share, community_fund_share, reinvest_share
FROM distribution_policies;
DROP TABLE distribution_policies;

-- Since when the policy a distribution used was in force (the earliest time for the programme default).
ALTER TABLE distributions ADD COLUMN policy_effective_at timestamptz;
