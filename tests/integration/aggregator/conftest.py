"""What the aggregator's integration tests share: the counts as SQL ``GROUP BY``, written
independently of the aggregator's code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

GROUP_BY = """
SELECT tenant_id, 'streams_total' AS field, count(*) AS n FROM streams GROUP BY 1
UNION ALL SELECT tenant_id, 'streams_status:' || status, count(*) FROM streams GROUP BY 1, 2
UNION ALL SELECT tenant_id, 'streams_kind:' || kind, count(*) FROM streams GROUP BY 1, 2
UNION ALL SELECT tenant_id, 'streams_resolution:' || CASE
        WHEN height IS NULL THEN 'unknown' WHEN height >= 2160 THEN 'uhd'
        WHEN height >= 1080 THEN 'fhd' WHEN height >= 720 THEN 'hd' ELSE 'sd' END,
    count(*) FROM streams GROUP BY 1, 2
UNION ALL SELECT tenant_id, 'streams_tag:' || tag, count(*)
    FROM streams, unnest(tags) AS tag GROUP BY 1, 2
UNION ALL SELECT tenant_id, 'snapshots_total', count(*) FROM snapshots GROUP BY 1
UNION ALL SELECT tenant_id, 'jobs_status:' || status, count(*) FROM snapshot_jobs GROUP BY 1, 2
"""

SqlCounts = Callable[[], Awaitable[dict[str, dict[str, int]]]]


@pytest.fixture
def sql_counts(db: asyncpg.Pool) -> SqlCounts:
    """The expected counts per tenant id, plus ``"platform"`` (their sum)."""

    async def counts() -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        platform: Counter[str] = Counter()
        for row in await db.fetch(GROUP_BY):
            result.setdefault(str(row["tenant_id"]), {})[row["field"]] = row["n"]
            platform[row["field"]] += row["n"]
        result["platform"] = dict(platform)
        return result

    return counts
