"""Adapters: the Redis count store and the rebuild's Redis side, the count hashes, the counts
epoch, the Postgres state reader, the counts.changed publisher; memory.py holds in-memory twins
of the ports for unit tests."""
