"""Adapters: Redis count store, Postgres state reader, the counts.changed publisher."""
