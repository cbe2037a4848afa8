"""lookout_notifier."""
