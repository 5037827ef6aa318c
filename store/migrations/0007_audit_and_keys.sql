-- A tamper-evident audit log, and what key management and abuse limits need.

-- Every change, appended in the transaction that makes it. Who did it comes
-- from the session (`paystream.actor`, `paystream.request_id`), set once per
-- transaction by the API, the workers, the janitor or the CLI.
CREATE TABLE audit_log (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor         text NOT NULL DEFAULT coalesce(nullif(current_setting('paystream.actor', true), ''), 'system'),
    request_id    text DEFAULT nullif(current_setting('paystream.request_id', true), ''),
    merchant_id   text,
    action        text NOT NULL,
    object_type   text NOT NULL,
    object_id     text NOT NULL,
    before        jsonb,
    after         jsonb,
    content_hash  bytea NOT NULL
);
CREATE INDEX audit_log_merchant ON audit_log (merchant_id, seq);
CREATE INDEX audit_log_object ON audit_log (object_id, seq);

-- The hash of a row's content, fixed at insert: any later edit shows. The seq
-- is left out (the chain covers it), so a row moved to another seq is
-- recognised where it lands.
CREATE FUNCTION audit_content_hash(entry audit_log) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(convert_to(concat_ws('|',
        to_char(entry.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
        entry.actor, coalesce(entry.request_id, ''), coalesce(entry.merchant_id, ''), entry.action,
        entry.object_type, entry.object_id, coalesce(entry.before::text, ''),
        coalesce(entry.after::text, '')), 'UTF8'))
$$;

CREATE FUNCTION audit_hash_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.content_hash := audit_content_hash(NEW);
    RETURN NEW;
END $$;
CREATE TRIGGER audit_log_hash BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_hash_on_insert();

-- The chain: each sealed row's hash over the previous one's and its own
-- content hash, written in seq order by the sealer (the janitor, and
-- `paystream audit verify`). A row missing from the chain, edited or moved
-- breaks every hash after it. A seq that a rolled-back transaction took and
-- never wrote is sealed as a gap.
CREATE TABLE audit_seals (
    seq           bigint PRIMARY KEY,
    gap           boolean NOT NULL,
    content_hash  bytea,
    prev_hash     bytea NOT NULL,
    hash          bytea NOT NULL,
    sealed_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER audit_seals_append_only BEFORE UPDATE OR DELETE ON audit_seals
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER audit_seals_no_truncate BEFORE TRUNCATE ON audit_seals
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Keys: a description, and a revocation that may lie ahead (a rotation's grace).
ALTER TABLE api_keys ADD COLUMN description text;

-- Which key created a payment: the card-testing guard throttles that key.
ALTER TABLE payments ADD COLUMN api_key_id text;
