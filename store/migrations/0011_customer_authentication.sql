-- Customer authentication (3-D Secure, SCA): a PSP may ask the customer to
-- authenticate before it decides. The payment waits in REQUIRES_ACTION,
-- with the page to send the customer to (`next_action_url`), the merchant's
-- page to bring them back to (`return_url`, given at creation), and how long
-- paystream waits (`action_expires_at`); the janitor asks the PSP about it
-- at `action_check_at` (NULL: once it has been quiet for the janitor's idle time).

ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (
    status IN ('PENDING', 'REQUIRES_ACTION', 'AUTHORIZED', 'CAPTURED', 'FAILED', 'REFUNDED',
               'CANCELED')
);

ALTER TABLE payments
    ADD COLUMN return_url text,
    ADD COLUMN next_action_url text,
    ADD COLUMN action_expires_at timestamptz,
    ADD COLUMN action_check_at timestamptz;

-- A payment awaiting its customer knows until when; only such a payment is checked on.
ALTER TABLE payments ADD CONSTRAINT payments_action_expiry CHECK (
    status <> 'REQUIRES_ACTION' OR action_expires_at IS NOT NULL
);
ALTER TABLE payments ADD CONSTRAINT payments_action_check CHECK (
    action_check_at IS NULL OR status = 'REQUIRES_ACTION'
);

-- The janitor's sweep reads the few payments awaiting a customer.
CREATE INDEX payments_awaiting_customer ON payments (updated_at) WHERE status = 'REQUIRES_ACTION';
