-- The partner event that started each step: its ce_id, carried through the chain as every internal event's
-- ce_correlationid. Steps recorded before this column existed keep NULL (their cause was not kept).
ALTER TABLE journey_steps ADD COLUMN partner_event_id text;
