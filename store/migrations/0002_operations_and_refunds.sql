-- Every call paystream makes to the PSP is an operation row: what it is, the
-- idempotency key it is sent under, how many times it was tried, whether the
-- last try ended without an answer, and when the janitor should look again.

ALTER TABLE payments
    ADD COLUMN refund_reserved_amount bigint NOT NULL DEFAULT 0,
    ADD COLUMN requires_reconciliation boolean NOT NULL DEFAULT false,
    ADD COLUMN reconciliation_reason text,
    -- A capture or cancel the merchant asked for that the PSP has not confirmed.
    ADD COLUMN pending_action text CHECK (pending_action IN ('capture', 'cancel')),
    -- Succeeded refunds count in refunded_amount; refunds still in flight are
    -- reserved on top, so two racing refunds can never exceed the capture.
    ADD CONSTRAINT payments_refund_reservation CHECK (
        refunded_amount <= refund_reserved_amount AND refund_reserved_amount <= captured_amount
    );

CREATE TABLE refunds (
    id               text PRIMARY KEY,
    payment_id       text NOT NULL REFERENCES payments (id),
    merchant_id      text NOT NULL REFERENCES merchants (id),
    amount           bigint NOT NULL CHECK (amount > 0),
    currency         char(3) NOT NULL,
    status           text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    reason           text,
    psp_reference    text,
    failure_code     text,
    failure_message  text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX refunds_payment ON refunds (payment_id, id);

CREATE TABLE payment_operations (
    id              text PRIMARY KEY,
    payment_id      text NOT NULL REFERENCES payments (id),
    merchant_id     text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('authorize', 'capture', 'void', 'refund')),
    refund_id       text REFERENCES refunds (id),
    amount          bigint NOT NULL,
    psp_key         text NOT NULL UNIQUE,
    status          text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    -- The last try may have reached the PSP: ask before sending again.
    outcome_unknown boolean NOT NULL DEFAULT false,
    last_error      text,
    -- Set by the janitor only: how often it re-drove this, and when it looks next.
    janitor_checks  integer NOT NULL DEFAULT 0,
    next_check_at   timestamptz,
    flagged_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'refund') = (refund_id IS NOT NULL))
);
-- At most one authorization, one capture and one void per payment.
CREATE UNIQUE INDEX payment_operations_once ON payment_operations (payment_id, kind)
    WHERE kind IN ('authorize', 'capture', 'void');
-- What the janitor scans: pending, not flagged, untouched for a while.
CREATE INDEX payment_operations_pending ON payment_operations (updated_at)
    WHERE status = 'pending' AND flagged_at IS NULL;
CREATE INDEX payment_operations_payment ON payment_operations (payment_id);
