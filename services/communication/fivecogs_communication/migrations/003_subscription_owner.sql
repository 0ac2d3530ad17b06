-- The partner a subscription belongs to (the partner id its ce_source names, else the whole ce_source): only
-- that partner may replace it. Rows from before this column carry no trace of who sent them (the table never
-- kept a source, the inbox keeps no subscriber id), so they stay NULL: nobody may replace them until an
-- operator names the owner (docs/operations.md, "Subscription owners"). Their notices keep flowing meanwhile.
ALTER TABLE subscribers ADD COLUMN owner text;
