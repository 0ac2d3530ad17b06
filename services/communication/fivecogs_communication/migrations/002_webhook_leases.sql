-- A claimed delivery's lease, kept apart from its backoff (both push next_attempt_at): while a subscriber has a
-- delivery leased (an attempt in flight), claims skip its other deliveries, so a slow or dead endpoint holds
-- one worker slot at most, across replicas. Cleared when the attempt is recorded; a stale one simply expires.
ALTER TABLE webhook_deliveries ADD COLUMN leased_until timestamptz;
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (subscriber_id, leased_until)
    WHERE leased_until IS NOT NULL;
