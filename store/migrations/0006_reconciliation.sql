-- Reconciliation of PSP settlement reports: each run, the report's lines
-- (streamed in with COPY), what each line was found to be, and the breaks.

CREATE TABLE reconciliations (
    id             text PRIMARY KEY,
    -- The merchant whose key started it; NULL for an operator's CLI run.
    merchant_id    text REFERENCES merchants (id),
    source         text NOT NULL CHECK (source IN ('upload', 'psp')),
    batch          text,
    status         text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    error          text,
    line_count     bigint NOT NULL DEFAULT 0,
    counts         jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz
);
CREATE INDEX reconciliations_merchant ON reconciliations (merchant_id, id);

-- The report as received. reconciliation_id comes from the session, so the
-- report's CSV can be handed to COPY untouched.
CREATE TABLE settlement_lines (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reconciliation_id  text NOT NULL
        DEFAULT current_setting('paystream.reconciliation_id') REFERENCES reconciliations (id),
    batch              text NOT NULL,
    settlement_date    date NOT NULL,
    record_type        text NOT NULL,
    psp_reference      text NOT NULL,
    reference          text NOT NULL,
    payment_reference  text NOT NULL,
    gross              bigint NOT NULL,
    fee                bigint NOT NULL,
    net                bigint NOT NULL,
    currency           text NOT NULL
);
CREATE INDEX settlement_lines_run ON settlement_lines (reconciliation_id, id);

-- What each line was found to be: matched, missing_internally, amount_mismatch,
-- currency_mismatch, duplicate; and the breaks of kind missing_at_psp, which
-- have no line.
CREATE TABLE reconciliation_results (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reconciliation_id  text NOT NULL REFERENCES reconciliations (id),
    line_id            bigint REFERENCES settlement_lines (id),
    line_number        bigint,
    class              text NOT NULL,
    record_type        text NOT NULL,
    reference          text NOT NULL,
    psp_reference      text,
    merchant_id        text,
    resolved           boolean NOT NULL DEFAULT false,
    reason             text
);
CREATE INDEX reconciliation_results_run ON reconciliation_results (reconciliation_id, class, id);

-- Each settlement item is posted once, whichever run or report carried it;
-- `settlement` names the ledger entry that posted it.
CREATE TABLE settled_items (
    item_key    text PRIMARY KEY,
    settlement  text NOT NULL,
    settled_at  timestamptz NOT NULL DEFAULT now()
);

-- What "missing at the PSP" looks for: our captures and refunds of a day.
CREATE INDEX payment_events_captured ON payment_events (created_at) WHERE type = 'payment.captured';
CREATE INDEX refunds_succeeded ON refunds (updated_at) WHERE status = 'SUCCEEDED';
