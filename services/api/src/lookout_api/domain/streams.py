"""Stream rules: validation of what a user sends, and the shape events carry."""

from __future__ import annotations

import re

from lookout_shared.contracts import StreamState
from lookout_shared.stream_urls import InvalidStreamUrl, StreamUrl, parse_stream_url

from lookout_api.domain.errors import InvalidInput

TAG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,49}$")
MAX_TAGS = 20


def check_url(url: str, media_dir: str | None) -> StreamUrl:
    try:
        return parse_stream_url(url, media_dir)
    except InvalidStreamUrl as exc:
        raise InvalidInput(f"url: {exc}") from None


def normalise_tags(tags: list[str]) -> list[str]:
    cleaned = sorted({t.strip().lower() for t in tags})
    if len(cleaned) > MAX_TAGS:
        raise InvalidInput(f"tags: at most {MAX_TAGS} tags")
    bad = [t for t in cleaned if not TAG.match(t)]
    if bad:
        raise InvalidInput(
            f"tags: {bad[0]!r} is not a tag (lowercase letters, digits, '_', '.', '-'; 1-50)"
        )
    return cleaned


def initial_status(enabled: bool) -> str:
    return "pending" if enabled else "disabled"


def state_of(row: dict[str, object]) -> StreamState:
    """The countable state of a stream row, as stream.created/updated events carry it."""
    return StreamState.model_validate(
        {
            k: row[k]
            for k in ("name", "kind", "status", "enabled", "tags", "width", "height", "codec")
        }
    )
