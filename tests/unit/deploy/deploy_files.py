"""Reading the repository's deployment files: services, their packages and Dockerfiles."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("api", "snapshot-worker", "count-aggregator", "notifier")
PORTS = {"api": 8000, "notifier": 8001, "snapshot-worker": 8002, "count-aggregator": 8003}


@dataclass(frozen=True)
class Package:
    name: str
    folder: Path
    scripts: frozenset[str]
    dependencies: tuple[str, ...]


def package(folder: Path) -> Package:
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    deps = tuple(re.split(r"[\s<>=!~\[;]", d, maxsplit=1)[0] for d in project["dependencies"])
    return Package(project["name"], folder, frozenset(project.get("scripts", {})), deps)


def packages() -> dict[str, Package]:
    found = [package(ROOT / "services" / s) for s in SERVICES] + [package(ROOT / "shared")]
    return {p.name: p for p in found}


def build_stage(dockerfile: Path) -> list[str]:
    """The instructions of the first stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    starts = [i for i, line in enumerate(instructions) if line.startswith("FROM ")]
    return instructions[starts[0] : starts[1]]


def runtime_stage(dockerfile: Path) -> list[str]:
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    instructions = [line.strip() for line in text.splitlines() if line.strip()]
    instructions = [line for line in instructions if not line.startswith("#")]
    last = max(i for i, line in enumerate(instructions) if line.startswith("FROM "))
    return instructions[last:]


def synced_package(dockerfile: Path) -> str:
    """The package the Dockerfile installs with `uv sync --package`."""
    names: set[str] = set(re.findall(r"uv sync [^&]*--package (\S+)", dockerfile.read_text()))
    assert len(names) == 1, f"{dockerfile}: one --package expected, got {names}"
    return names.pop()


# ``$$``, ``${NAME}``, ``${NAME<op>word}`` and ``$NAME``, as the compose specification spells them.
_VARIABLE = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<word>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_]\w*))"
)


def interpolate(data: Any, env: Mapping[str, str]) -> tuple[Any, list[str]]:
    """What `docker compose config` does to a parsed compose file's variables (without a
    Docker engine): every string value with its variables replaced, and the errors that
    ``${VAR:?msg}`` and ``${VAR?msg}`` raise (compose then refuses to start)."""
    errors: list[str] = []

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return _VARIABLE.sub(one, node)
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    def one(match: re.Match[str]) -> str:
        if match["dollar"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, word = match["op"] or "", match["word"] or ""
        value = env.get(name)
        present = value is not None and (value != "" or not op.startswith(":"))
        if op.endswith("?") and not present:
            errors.append(word or f"{name} is required")
            return ""
        if op.endswith("-"):
            return value if present and value is not None else word
        if op.endswith("+"):
            return word if present else ""
        return value or ""

    return walk(data), errors
