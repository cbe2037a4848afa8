"""Generating a Python client from the api's OpenAPI document with openapi-python-client, as
docs/clients says, held to producing no warning (used by the unit and e2e tests)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BIN = ROOT / ".venv" / "bin"
CLIENT_CONFIG = ROOT / "docs" / "clients" / "openapi-python-client.yaml"


def generate_client(folder: Path) -> None:
    """Generate ``folder/client`` from ``folder/openapi.json``; fails on any warning."""
    out = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(folder / "openapi.json"),
            "--output-path",
            str(folder / "client"),
            "--config",
            str(CLIENT_CONFIG),
        ],
        capture_output=True,
        text=True,
        cwd=folder,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(folder)},
        timeout=120,
    )
    output = out.stdout + out.stderr
    assert out.returncode == 0, output
    output = "\n".join(line for line in output.splitlines() if not line.startswith("Generating "))
    assert not re.search(r"warning|cannot parse|skipping|error", output, re.IGNORECASE), output
