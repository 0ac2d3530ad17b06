-- Room for every amount the contract allows (up to 10^15 THB): numeric(14, 2) stopped at 10^12.
-- Widening a numeric keeps its scale and needs no table rewrite.
ALTER TABLE settlements
    ALTER COLUMN revenue_thb TYPE numeric(20, 2),
    ALTER COLUMN cost_thb TYPE numeric(20, 2),
    ALTER COLUMN non_local_cost_thb TYPE numeric(20, 2);
ALTER TABLE distributions
    ALTER COLUMN margin_thb TYPE numeric(20, 2),
    ALTER COLUMN members_thb TYPE numeric(20, 2),
    ALTER COLUMN community_fund_thb TYPE numeric(20, 2),
    ALTER COLUMN reinvest_thb TYPE numeric(20, 2);
