"""State-machine definitions: immutable numbered versions and aliases, event-sourced like executions."""
