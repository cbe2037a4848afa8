"""The counting rules: pure functions, no I/O."""
