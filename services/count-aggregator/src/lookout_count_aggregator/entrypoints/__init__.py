"""Transports into the aggregator: the event consumer, HTTP ops routes, the CLI."""
