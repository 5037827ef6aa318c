-- PSP webhooks in (an inbox), merchant webhook endpoints and deliveries out.

-- Every valid PSP callback, stored before it is acknowledged and applied by
-- an actor. (provider, webhook_id) is the dedup backstop behind Redis.
CREATE TABLE webhook_inbox (
    id           text PRIMARY KEY,
    provider     text NOT NULL,
    webhook_id   text NOT NULL,
    event_type   text NOT NULL,
    reference    text,
    payload      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'applied', 'unmatched', 'ignored')),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, webhook_id)
);
CREATE INDEX webhook_inbox_pending ON webhook_inbox (updated_at) WHERE status = 'pending';
CREATE INDEX webhook_inbox_reference ON webhook_inbox (reference);

CREATE TABLE webhook_endpoints (
    id                   text PRIMARY KEY,
    merchant_id          text NOT NULL REFERENCES merchants (id),
    url                  text NOT NULL,
    event_types          text[] NOT NULL,
    secret               text NOT NULL,
    -- After a rotation the previous secret also signs, until it retires.
    previous_secret      text,
    previous_retires_at  timestamptz,
    status               text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    disabled_reason      text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz
);
CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id) WHERE deleted_at IS NULL;

-- One row per (endpoint, event): the fan-out is idempotent on it, so an event
-- read twice from the stream is delivered as one delivery.
CREATE TABLE webhook_deliveries (
    id               text PRIMARY KEY,
    endpoint_id      text NOT NULL REFERENCES webhook_endpoints (id),
    merchant_id      text NOT NULL,
    event_id         text NOT NULL,
    event_type       text NOT NULL,
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (merchant_id, id) WHERE status = 'dead';
