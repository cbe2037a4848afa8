"""The streams table as the services read it: its columns, the statuses a stream takes, and
the orders a stream list may be sorted in. (A stream URL is shown only through
``stream_urls.mask_credentials``.)"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from lookout_shared.contracts import StreamStatus

STATUSES: tuple[StreamStatus, ...] = get_args(StreamStatus)

SortKey = Literal["created_at", "name"]
Sort = Literal["-created_at", "created_at", "-name", "name"]  # '-': descending
SORTS: tuple[Sort, ...] = get_args(Sort)

# A stream row as the api returns it (its sparse fieldsets choose from these), in this order.
COLUMNS = (
    "id", "tenant_id", "name", "url", "kind", "tags", "enabled", "status", "last_error",
    "last_error_category", "width", "height", "codec", "hot", "hot_mode", "version",
    "created_at", "updated_at",
)  # fmt: skip


def column_list(columns: Iterable[str] = COLUMNS, alias: str = "") -> str:
    """The columns as a SELECT or RETURNING list: ``id, tenant_id, …``, each prefixed with
    ``alias.`` when one is given."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + c for c in columns)
