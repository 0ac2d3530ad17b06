-- partner batch.produced.v2: the producer's lot number and best-before date (null for v1 batches).
ALTER TABLE batches ADD COLUMN lot text, ADD COLUMN expires_on date;
