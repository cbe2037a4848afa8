"""The count drift check's last result, as the aggregator writes it and the api's dashboard
reads it: one JSON string at ``<prefix>counts:drift:last``.

It holds no tenant ids (the dashboard shows it to every tenant's users): when the check ran,
its mode (``sampled`` or ``full``), and how many scopes and count fields differed from
Postgres (0 and 0: the counts match).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from lookout_shared.redis import Keys


@dataclass(frozen=True)
class DriftReport:
    checked_at: float  # Unix seconds
    mode: str
    scopes: int
    fields: int


def report_key(keys: Keys) -> str:
    return keys("counts", "drift", "last")


def encode(report: DriftReport) -> bytes:
    return json.dumps(asdict(report)).encode()


def decode(raw: bytes | str | None) -> DriftReport | None:
    """The report in a ``GET`` answer; None when there is none or it is malformed."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return DriftReport(
            float(data["checked_at"]), str(data["mode"]), int(data["scopes"]), int(data["fields"])
        )
    except (KeyError, TypeError, ValueError):  # JSONDecodeError is a ValueError
        return None
