-- Reconciliation at a million lines (issue #16). A report's lines, and the
-- PSP's own lines an upload is checked against, are staging: copied in by one
-- COPY and read by the run's set-wise passes. They are UNLOGGED (no WAL for a
-- copy of a file the operator or the PSP still has) and carry no foreign key,
-- whose check is a trigger per row: a run writes its lines and its results
-- under its own id only (`store.settlement_reports`, `store.reconciliation`).
--
-- After a crash Postgres empties an unlogged table: a run that was not yet
-- completed finds its lines gone and fails, saying so (the report is loaded
-- again); a completed run keeps its results and counts, which are logged.

ALTER TABLE reconciliation_results DROP CONSTRAINT reconciliation_results_line_id_fkey;
ALTER TABLE reconciliation_results DROP CONSTRAINT reconciliation_results_reconciliation_id_fkey;
ALTER TABLE settlement_lines DROP CONSTRAINT settlement_lines_reconciliation_id_fkey;
ALTER TABLE psp_settlement_lines DROP CONSTRAINT psp_settlement_lines_reconciliation_id_fkey;
ALTER TABLE settlement_lines SET UNLOGGED;
ALTER TABLE psp_settlement_lines SET UNLOGGED;

