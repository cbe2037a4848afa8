"""The aggregator's use-cases, each seeing the outside through ports.py only.

- entity_events.py: apply a batch of entity events to the counts (the consumer's handler);
  idempotent by event id and order-tolerant by entity version, since RabbitMQ delivers at
  least once and in no guaranteed order across retries.
- rebuild.py: recompute the counts from Postgres while events keep flowing.
- drift.py: compare the counts with Postgres (the ``check`` command, the periodic check).
- heal.py: notice that Redis lost the counts and rebuild them.
"""
