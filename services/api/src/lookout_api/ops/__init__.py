"""Operator commands for a running deployment: the dead-letter queues and the outbox.

``lookout-api dlq list|replay|purge`` and ``lookout-api outbox status``; see
docs/operations.md for when to use which.
"""
