"""The repository layout that the design names, and a lockfile that matches the projects."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SERVICES = {
    "services/api": ("lookout-api", "lookout_api"),
    "services/snapshot-worker": ("lookout-snapshot-worker", "lookout_snapshot_worker"),
    "services/count-aggregator": ("lookout-count-aggregator", "lookout_count_aggregator"),
    "services/notifier": ("lookout-notifier", "lookout_notifier"),
}


def test_each_service_is_its_own_package_with_its_entrypoint() -> None:
    for folder, (name, module) in SERVICES.items():
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
        assert project["name"] == name
        assert project["scripts"] == {name: f"{module}.main:main"}
        assert (ROOT / folder / "src" / module / "main.py").is_file()
    for path in (
        "shared/src/lookout_shared",
        "deploy",
        "tests/unit",
        "tests/integration",
        "tests/e2e",
    ):
        assert (ROOT / path).is_dir(), path
    assert (ROOT / "docker-compose.yml").is_file()


def test_lockfile_is_current() -> None:
    uv = shutil.which("uv") or str(ROOT / "var/tools/bin/uv")
    result = subprocess.run(
        [uv, "lock", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    assert result.returncode == 0, result.stderr
