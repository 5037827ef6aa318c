-- PSP connectors: every payment, reconciliation run and journal entry names
-- the PSP it belongs to, by its connector's name. A payment keeps its PSP for
-- life (its token is valid there only); everything after its creation goes to
-- that connector. Before this migration there was one PSP, the simulator.
-- (Adding a column with a constant default rewrites nothing and fires no row
-- trigger: the append-only ledger is not touched.) The defaults are dropped
-- afterwards: from now on every writer names the PSP.

ALTER TABLE payments ADD COLUMN psp text NOT NULL DEFAULT 'simulator';
ALTER TABLE payments ALTER COLUMN psp DROP DEFAULT;

-- A run reconciles one PSP's settlement report, against that PSP's payments.
ALTER TABLE reconciliations ADD COLUMN psp text NOT NULL DEFAULT 'simulator';
ALTER TABLE reconciliations ALTER COLUMN psp DROP DEFAULT;

-- Which PSP took (or paid out) the money an entry moves: a capture's and a
-- refund's are their payment's, a settlement's its run's.
ALTER TABLE journal_entries ADD COLUMN psp text NOT NULL DEFAULT 'simulator';
ALTER TABLE journal_entries ALTER COLUMN psp DROP DEFAULT;

-- `webhook_inbox.provider` (migration 0003) already names the connector a
-- callback came from, and deduplicates on it with the PSP's event id.
