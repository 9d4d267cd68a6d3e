-- Revision 0005 for SQLite: nothing. The revision adds PostgreSQL's orchestrator_append_v3 (see the
-- PostgreSQL file); SQLite has no append function. Every revision has a file per dialect with at
-- least one statement each way: these two do nothing.

-- name: upgrade:nothing
SELECT 1;

-- name: downgrade:nothing
SELECT 1;
