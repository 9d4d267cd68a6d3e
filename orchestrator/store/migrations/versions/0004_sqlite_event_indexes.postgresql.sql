-- Revision 0004 for PostgreSQL: nothing. The revision re-keys the indexes of SQLite's events table
-- (see the SQLite file); PostgreSQL's events keep theirs. Every revision has a file per dialect with
-- at least one statement each way: these two do nothing.

-- name: upgrade:nothing
SELECT 1;

-- name: downgrade:nothing
SELECT 1;
