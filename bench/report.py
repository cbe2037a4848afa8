"""What every benchmark shares: percentiles, the machine it ran on, and the results table.

A benchmark builds :class:`Row` values (the measured figure next to its baseline from the
same run) and calls :func:`publish`, which prints the table and writes it to
``bench/results/<name>.md``.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; ``pct`` in 0..100."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(samples_s: Sequence[float]) -> str:
    ms = [s * 1000 for s in samples_s]
    return f"p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms (mean {statistics.fmean(ms):.1f})"


async def latencies(read: Callable[[], Awaitable[object]], n: int) -> list[float]:
    """``n`` timed calls of ``read``, one at a time, after one untimed warm-up call."""
    await read()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await read()
        samples.append(time.perf_counter() - started)
    return samples


def ms(samples: Sequence[float]) -> str:
    return (
        f"p50 {percentile(samples, 50) * 1000:.2f} ms, p99 {percentile(samples, 99) * 1000:.2f} ms"
    )


@dataclass(frozen=True)
class Row:
    what: str
    measured: str  # the figure with its unit, e.g. "1,234 req/s"
    baseline_name: str
    baseline: str
    ratio: float  # measured relative to baseline, >1 means better

    def cells(self) -> list[str]:
        return [
            self.what,
            self.measured,
            f"{self.baseline_name}: {self.baseline}",
            f"{self.ratio:.2f}x",
        ]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, Python {platform.python_version()}"


def publish(name: str, title: str, rows: Sequence[Row], notes: str = "") -> str:
    header = ["row", "measured", "baseline (same run)", "ratio"]
    lines = [
        f"# {title}",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}, commit {_commit()}.",
        f"Reproduce: `make bench ROWS={name}`.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r.cells()) + " |" for r in rows),
    ]
    if notes:
        lines += ["", notes.strip()]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(text)
    print(text, flush=True)
    return text


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
