-- Room for every amount the contract allows (up to 10^15 THB, quantities up to 10^15): numeric(14, 2) stopped
-- at 10^12, so a valid but very large delivery was dead-lettered as a processing error. Widening a numeric
-- keeps its scale and needs no table rewrite.
ALTER TABLE deliveries
    ALTER COLUMN cost_thb TYPE numeric(20, 2),
    ALTER COLUMN quantity TYPE numeric(21, 3);
