"""The worker's rules: job and stream state, failure classes, address policy. No I/O."""
