-- Merchants, their API keys, payments with their timeline, idempotency
-- records and the transactional outbox.

CREATE TABLE merchants (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only an HMAC of each key is kept; the key itself is shown once at creation.
CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    merchant_id  text NOT NULL REFERENCES merchants (id),
    key_hash     bytea NOT NULL UNIQUE,
    key_prefix   text NOT NULL,
    roles        text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id);

CREATE TABLE payments (
    id                 text PRIMARY KEY,
    merchant_id        text NOT NULL REFERENCES merchants (id),
    order_id           text NOT NULL,
    amount             bigint NOT NULL CHECK (amount > 0),
    currency           char(3) NOT NULL,
    status             text NOT NULL CHECK (
        status IN ('PENDING', 'AUTHORIZED', 'CAPTURED', 'FAILED', 'REFUNDED', 'CANCELED')
    ),
    capture_method     text NOT NULL CHECK (capture_method IN ('automatic', 'manual')),
    method_token       text NOT NULL,
    description        text,
    metadata           jsonb NOT NULL DEFAULT '{}',
    authorized_amount  bigint NOT NULL DEFAULT 0,
    captured_amount    bigint NOT NULL DEFAULT 0,
    refunded_amount    bigint NOT NULL DEFAULT 0,
    psp_reference      text,
    failure_code       text,
    failure_message    text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    UNIQUE (merchant_id, order_id),
    CHECK (captured_amount <= authorized_amount AND authorized_amount <= amount),
    CHECK (refunded_amount <= captured_amount)
);
-- Lists page newest first on the time-ordered id.
CREATE INDEX payments_merchant_id ON payments (merchant_id, id DESC);
CREATE INDEX payments_merchant_status ON payments (merchant_id, status, id DESC);

-- The timeline: one row per transition, with who caused it.
CREATE TABLE payment_events (
    id           text PRIMARY KEY,
    payment_id   text NOT NULL REFERENCES payments (id),
    merchant_id  text NOT NULL,
    type         text NOT NULL,
    from_status  text,
    to_status    text NOT NULL,
    source       text NOT NULL CHECK (
        source IN ('api', 'psp', 'webhook', 'janitor', 'reconciliation')
    ),
    detail       jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX payment_events_payment ON payment_events (payment_id, created_at, id);

-- Scoped per merchant. A row exists only once its response is known: the
-- response is written in the same transaction as the work it describes.
CREATE TABLE idempotency_keys (
    merchant_id       text NOT NULL REFERENCES merchants (id),
    key               text NOT NULL,
    request_hash      bytea NOT NULL,
    response_status   smallint NOT NULL,
    response_payload  bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Written in the transaction of each transition; a relay publishes it.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      text NOT NULL UNIQUE,
    merchant_id   text NOT NULL,
    event_type    text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
