-- What /metrics reads at every scrape: the payments still waiting on their
-- PSP (PENDING) and those flagged for reconciliation, by PSP, with the age
-- of the oldest. Partial indexes hold only those few rows, so a scrape never
-- walks every payment; each costs one index entry while a payment waits.
CREATE INDEX payments_pending ON payments (psp, created_at) WHERE status = 'PENDING';
CREATE INDEX payments_flagged ON payments (psp) WHERE requires_reconciliation;
