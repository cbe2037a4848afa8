"""What every console script answers without starting anything: ``--help`` and ``--version``.

Scripts parse their arguments before reading settings or connecting, so both work with no
configuration and no reachable dependency.
"""

from __future__ import annotations

import argparse
from importlib import metadata


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser for ``prog`` (also its distribution's name) with ``--version``."""
    made = argparse.ArgumentParser(prog=prog, description=description)
    made.add_argument("--version", action="version", version=f"%(prog)s {metadata.version(prog)}")
    return made
