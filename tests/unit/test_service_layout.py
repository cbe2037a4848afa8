"""Every Lookout service is laid out the same way; this checks the services already moved.

main.py settings.py bootstrap.py ports.py metrics.py at the package root, and the packages
domain/ (rules, no I/O), handlers/ (one per message, through ports only), adapters/ (with
memory.py twins for unit tests) and entrypoints/ (http, consumer, cli). A service joins the
check by adding its package name to SERVICES.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

SERVICES = [
    "lookout_api",
    "lookout_count_aggregator",
    "lookout_notifier",
    "lookout_snapshot_worker",
]
ALL_SERVICES = {
    "lookout_api",
    "lookout_count_aggregator",
    "lookout_notifier",
    "lookout_snapshot_worker",
}
ROOT_MODULES = {"__init__.py", "main.py", "settings.py", "bootstrap.py", "ports.py", "metrics.py"}
PACKAGES = ["domain", "handlers", "adapters", "entrypoints"]
CLIENT_LIBRARIES = {"asyncpg", "redis", "aio_pika", "av", "httpx", "PIL"}
MAX_LINES = 300


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    module = ".".join(path.relative_to(package_dir(package).parent).with_suffix("").parts)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("package", SERVICES)
def test_service_has_the_shared_layout(package: str) -> None:
    root = package_dir(package)
    for name in sorted(ROOT_MODULES):
        assert (root / name).is_file(), f"{package} has no {name}"
    for name in PACKAGES:
        assert (root / name / "__init__.py").is_file(), f"{package} has no {name}/ package"
    assert (root / "adapters" / "memory.py").is_file(), f"{package} has no adapters/memory.py"


@pytest.mark.parametrize("package", SERVICES)
def test_service_has_no_loose_modules_at_its_root(package: str) -> None:
    loose = {p.name for p in package_dir(package).glob("*.py")} - ROOT_MODULES
    assert not loose, f"{package}: move {sorted(loose)} into {PACKAGES}"


@pytest.mark.parametrize("package", SERVICES)
def test_service_handlers_import_only_ports_and_domain(package: str) -> None:
    own_packages = {f"{package}.{p}" for p in ("bootstrap", "adapters", "entrypoints")}
    others = ALL_SERVICES - {package}
    for path in sorted((package_dir(package) / "handlers").rglob("*.py")):
        for name in imported_modules(path, package):
            top = name.split(".")[0]
            assert top not in CLIENT_LIBRARIES, f"{path.name} imports the client library {name}"
            assert top not in others, f"{path.name} imports another service's {name}"
            assert not any(name == p or name.startswith(p + ".") for p in own_packages), (
                f"{path.name} imports {name}: handlers see the outside through ports only"
            )


@pytest.mark.parametrize("package", SERVICES)
def test_service_modules_stay_under_the_line_limit(package: str) -> None:
    for path in sorted(package_dir(package).rglob("*.py")):
        lines = len(path.read_text().splitlines())
        assert lines <= MAX_LINES, f"{path.relative_to(package_dir(package))}: {lines} lines"
