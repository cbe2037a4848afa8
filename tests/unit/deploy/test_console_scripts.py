"""Every console script and subcommand answers ``--help`` and ``--version`` (and the document
commands their output) without starting anything: production settings with no secret (any
settings read would refuse them) and dependencies on a closed loopback port (any connection
would fail)."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import pytest

BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
UNREACHABLE = {
    "PATH": f"{BIN}:/usr/bin:/bin",
    "LOOKOUT_ENVIRONMENT": "production",
    "LOOKOUT_DATABASE_URL": "postgresql://lookout:x@127.0.0.1:1/lookout",
    "LOOKOUT_REDIS_URL": "redis://127.0.0.1:1/0",
    "LOOKOUT_AMQP_URL": "amqp://lookout:x@127.0.0.1:1/lookout",
}
QUICK_SECONDS = 20  # imports only, on a loaded machine (serving would never return)
COMMANDS = [
    ["lookout-api"],
    ["lookout-api", "serve"],
    ["lookout-api", "create-superuser"],
    ["lookout-api", "seed-demo"],
    ["lookout-api", "dlq"],
    ["lookout-api", "dlq", "list"],
    ["lookout-api", "dlq", "replay"],
    ["lookout-api", "dlq", "purge"],
    ["lookout-api", "outbox", "status"],
    ["lookout-api", "openapi"],
    ["lookout-snapshot-worker"],
    ["lookout-count-aggregator"],
    ["lookout-count-aggregator", "serve"],
    ["lookout-count-aggregator", "rebuild"],
    ["lookout-count-aggregator", "check"],
    ["lookout-notifier"],
    ["lookout-notifier", "serve"],
    ["lookout-notifier", "schema"],
]


def run(argv: list[str]) -> tuple[list[str], int, str, float]:
    """(argv, exit code, output, seconds); a command that starts serving never returns by
    itself and fails on the timeout."""
    started = time.monotonic()
    done = subprocess.run(
        argv,
        env=UNREACHABLE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=QUICK_SECONDS * 3,
        check=False,
    )
    return argv, done.returncode, done.stdout.decode(), time.monotonic() - started


def run_all(argvs: list[list[str]]) -> list[tuple[list[str], int, str, float]]:
    """A few side by side: each one's time stays its own on a loaded machine."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(run, argvs))


def test_every_command_answers_help_without_settings_or_connections() -> None:
    for argv, code, out, seconds in run_all([[*c, "--help"] for c in COMMANDS]):
        assert code == 0 and out.startswith("usage: "), (argv, out)
        assert seconds < QUICK_SECONDS, argv


@pytest.mark.parametrize(
    "script",
    ["lookout-api", "lookout-snapshot-worker", "lookout-count-aggregator", "lookout-notifier"],
)
def test_every_script_answers_its_version(script: str) -> None:
    [(_, code, out, seconds)] = run_all([[script, "--version"]])
    assert code == 0 and out.strip() == f"{script} {metadata.version(script)}", out
    assert seconds < QUICK_SECONDS


def test_the_document_commands_print_json_without_settings_or_connections() -> None:
    results = run_all([["lookout-api", "openapi"], ["lookout-notifier", "schema"]])
    for argv, code, out, _ in results:
        assert code == 0, (argv, out)
    assert json.loads(results[0][2])["info"]["title"] == "Lookout API"
    assert json.loads(results[1][2])["title"] == "Lookout notifier frames"
