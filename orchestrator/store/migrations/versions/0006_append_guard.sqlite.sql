-- Revision 0006 for SQLite: nothing. The revision adds PostgreSQL's orchestrator_append_v4 (see the
-- PostgreSQL file); SQLite has no append function: its backend checks an append's guard in Python,
-- inside the append's write transaction (the one write lock). Every revision has a file per dialect
-- with at least one statement each way: these two do nothing.

-- name: upgrade:nothing
SELECT 1;

-- name: downgrade:nothing
SELECT 1;
