-- Room for every amount the contract allows (up to 10^15 THB) and for a line's revenue beyond it:
-- numeric(14, 2) stopped at 10^12. Widening a numeric keeps its scale and needs no table rewrite.
ALTER TABLE batches
    ALTER COLUMN cost_thb TYPE numeric(20, 2),
    ALTER COLUMN non_local_cost_thb TYPE numeric(20, 2);
ALTER TABLE listings ALTER COLUMN unit_price_thb TYPE numeric(20, 2);
ALTER TABLE order_lines ALTER COLUMN unit_price_thb TYPE numeric(20, 2);
ALTER TABLE portions
    ALTER COLUMN cost_thb TYPE numeric(20, 2),
    ALTER COLUMN non_local_cost_thb TYPE numeric(20, 2);
ALTER TABLE settlements
    ALTER COLUMN revenue_thb TYPE numeric(20, 2),
    ALTER COLUMN cost_thb TYPE numeric(20, 2),
    ALTER COLUMN non_local_cost_thb TYPE numeric(20, 2);
