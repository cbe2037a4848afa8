"""lookout_count_aggregator."""
