"""Durable executions on the event store."""
