"""The event store's contract suite: one set of tests, run against SQLite and PostgreSQL."""
