-- Platform operators: a kind of principal apart from merchants. A PSP's
-- settlement report covers every merchant of the gateway, so reconciling it
-- is an operator's act; no merchant key can hold or grant what operators hold.

CREATE TABLE operators (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A key belongs to one merchant or to one operator, never both, never neither.
ALTER TABLE api_keys ALTER COLUMN merchant_id DROP NOT NULL;
ALTER TABLE api_keys ADD COLUMN operator_id text REFERENCES operators (id);
CREATE INDEX api_keys_operator ON api_keys (operator_id) WHERE operator_id IS NOT NULL;

-- Upgrade: merchant keys lose `reconciliation` (an operator's role now; make
-- operator keys with `paystream operators create`). A key that held it keeps
-- reading its own merchant's ledger, which that role allowed: `ledger:read`.
UPDATE api_keys
SET roles = ARRAY(
    SELECT DISTINCT CASE WHEN role = 'reconciliation' THEN 'ledger:read' ELSE role END
    FROM unnest(roles) AS role
    WHERE role IN ('payments:write', 'payments:read', 'refunds:write', 'ledger:read',
                   'audit:read', 'admin', 'reconciliation')
    ORDER BY 1)
WHERE merchant_id IS NOT NULL;

ALTER TABLE api_keys ADD CONSTRAINT api_keys_one_owner
    CHECK ((merchant_id IS NULL) <> (operator_id IS NULL));
-- Defence in depth under the API's and the CLI's own checks: each kind of key
-- carries only its kind's roles, so no merchant key ever holds an operator's
-- (the two `admin` roles share a name; the key's owner says which it is).
-- Keep these lists in step with `gateway.auth.MerchantRole` and `OperatorRole`.
ALTER TABLE api_keys ADD CONSTRAINT api_keys_merchant_roles
    CHECK (merchant_id IS NULL OR roles <@ ARRAY['payments:write', 'payments:read',
        'refunds:write', 'ledger:read', 'audit:read', 'admin']);
ALTER TABLE api_keys ADD CONSTRAINT api_keys_operator_roles
    CHECK (operator_id IS NULL OR roles <@ ARRAY['reconciliation', 'admin']);

-- Runs are started by operators (or from the command line, where neither is
-- set). `merchant_id` stays for runs a merchant key started before this.
ALTER TABLE reconciliations ADD COLUMN operator_id text REFERENCES operators (id);
ALTER TABLE reconciliations ADD COLUMN api_key_id text;

-- What the PSP itself says of the batches an uploaded report names, fetched
-- through the PSP client to check the upload line by line: an upload is an
-- operator's claim, not the PSP's word. Same columns as `settlement_lines`,
-- and loaded the same way (COPY, reconciliation_id from the session).
CREATE TABLE psp_settlement_lines (
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
CREATE INDEX psp_settlement_lines_run ON psp_settlement_lines (reconciliation_id, id);
