-- Where each published event sits in the Redis Stream, and when the merchant
-- webhook fan-out took it in. An event published but never fanned out whose
-- stream entry is gone (Redis flushed or lost) is published again.
ALTER TABLE outbox
    ADD COLUMN stream_id text,
    ADD COLUMN fanned_out_at timestamptz;
CREATE INDEX outbox_not_fanned_out ON outbox (published_at)
    WHERE published_at IS NOT NULL AND fanned_out_at IS NULL;
