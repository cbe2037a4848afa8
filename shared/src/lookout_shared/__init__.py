"""lookout_shared."""
