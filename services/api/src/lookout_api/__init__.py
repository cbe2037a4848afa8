"""lookout_api."""
