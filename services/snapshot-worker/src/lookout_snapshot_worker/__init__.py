"""lookout_snapshot_worker."""
