"""Benchmarks for `make bench`: each ``bench_<name>.py`` compares against a baseline in the same run."""
