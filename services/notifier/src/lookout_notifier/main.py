"""Console script ``lookout-notifier`` (the commands are in entrypoints/cli.py)."""

from __future__ import annotations

from lookout_notifier.entrypoints.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
