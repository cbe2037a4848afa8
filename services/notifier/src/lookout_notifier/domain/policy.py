"""Connection-level rules: which origins may connect."""

from __future__ import annotations

from collections.abc import Collection


def origin_allowed(origin: str | None, allowed: Collection[str]) -> bool:
    """No Origin header means a non-browser client (Origin guards browsers only)."""
    if origin is None:
        return True
    return origin.rstrip("/") in {a.rstrip("/") for a in allowed}
