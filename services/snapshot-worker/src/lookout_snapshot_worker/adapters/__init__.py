"""Adapters for the worker's ports: ffmpeg, the address guard, Postgres, and in-memory twins."""
