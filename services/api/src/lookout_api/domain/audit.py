"""What an audit entry records about a change. Stream URLs are masked: an audit reader
must not learn a camera's password."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lookout_shared.stream_urls import mask_credentials

from lookout_api.domain.rows import Row


@dataclass(frozen=True)
class Entry:
    action: str  # <entity>.<verb>, e.g. stream.updated
    entity_type: str
    entity_id: Any
    tenant_id: Any
    changes: dict[str, Any] = field(default_factory=dict)


def _shown(key: str, value: Any) -> Any:
    if key == "url" and isinstance(value, str):
        return mask_credentials(value)
    return value


def snapshot(row: Row, keys: Iterable[str]) -> dict[str, Any]:
    """The listed fields of a created or deleted entity."""
    return {k: _shown(k, row[k]) for k in keys}


def diff(before: Row, after: Row, keys: Iterable[str]) -> dict[str, Any]:
    """``{field: {"from": old, "to": new}}`` for every listed field that changed."""
    return {
        k: {"from": _shown(k, before[k]), "to": _shown(k, after[k])}
        for k in keys
        if before[k] != after[k]
    }
