"""Stream rules: validation of what a user sends, and the shape events carry."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lookout_shared.contracts import StreamState
from lookout_shared.stream_urls import InvalidStreamUrl, StreamUrl, parse_stream_url
from lookout_shared.streams import COLUMNS

from lookout_api.domain.errors import InvalidInput
from lookout_api.domain.rows import Row

TAG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,49}$")
MAX_TAGS = 20


def check_url(url: str, media_dir: str | None) -> StreamUrl:
    try:
        parsed = parse_stream_url(url, media_dir)
    except InvalidStreamUrl as exc:
        raise InvalidInput(f"url: {exc}") from None
    # Stricter than the shared parser: a raw space is never part of a valid URI, and ffmpeg
    # would read it differently than a person reviewing the stream list.
    if any(c.isspace() for c in url):
        raise InvalidInput("url: must not contain whitespace (percent-encode a space as %20)")
    return parsed


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


def state_of(row: Row) -> StreamState:
    """The countable state of a stream row, as stream.created/updated events carry it."""
    return StreamState.model_validate(
        {
            k: row[k]
            for k in (
                "name",
                "kind",
                "status",
                "enabled",
                "tags",
                "width",
                "height",
                "codec",
                "hot",
                "hot_mode",
            )
        }
    )


# What a change may touch, and what follows from it -----------------------------------------

EDITABLE = ("name", "url", "tags", "enabled", "hot", "hot_mode")
HOT_MODES = ("keyframes", "all")
MAX_NAME = 200


@dataclass(frozen=True)
class Change:
    """The stream's columns after a change, and whether it needs a fresh probe."""

    values: dict[str, Any]
    changed: tuple[str, ...]
    probe: bool
    heats: bool = False  # the stream becomes hot: counted against the hot stream quota


def check_name(name: str) -> str:
    if not 1 <= len(name) <= MAX_NAME or not name.strip():
        raise InvalidInput(f"name: 1 to {MAX_NAME} characters, not only spaces")
    return name


def new_stream(
    name: str, url: str, tags: list[str], enabled: bool, media_dir: str | None
) -> dict[str, Any]:
    """The columns of a new stream, every input checked."""
    parsed = check_url(url, media_dir)
    return {
        "name": check_name(name),
        "url": url,
        "kind": parsed.kind,
        "tags": normalise_tags(tags),
        "enabled": enabled,
        "status": initial_status(enabled),
    }


def apply_changes(current: Row, changes: Mapping[str, Any], media_dir: str | None) -> Change:
    """The stream after ``changes`` (only keys of EDITABLE), checked.

    A new URL or re-enabling resets what the last probe found, sets the status back to
    pending and asks for a probe; disabling sets the status to disabled.
    """
    values = {k: current[k] for k in CHANGEABLE}
    if "name" in changes:
        values["name"] = check_name(changes["name"])
    if "tags" in changes:
        values["tags"] = normalise_tags(changes["tags"])
    if "enabled" in changes:
        values["enabled"] = bool(changes["enabled"])
    if "hot" in changes:
        values["hot"] = bool(changes["hot"])
    if "hot_mode" in changes:
        if changes["hot_mode"] not in HOT_MODES:
            raise InvalidInput(f"hot_mode: one of {', '.join(HOT_MODES)}")
        values["hot_mode"] = changes["hot_mode"]
    url_changed = "url" in changes and changes["url"] != current["url"]
    if url_changed:
        values["url"] = changes["url"]
        values["kind"] = check_url(changes["url"], media_dir).kind
    reenabled = values["enabled"] and not current["enabled"]
    if not values["enabled"]:
        values["status"] = "disabled"
    elif url_changed or reenabled:
        values.update(
            status="pending",
            last_error=None,
            last_error_category=None,
            width=None,
            height=None,
            codec=None,
        )
    changed = tuple(k for k in CHANGEABLE if values[k] != current[k])
    return Change(
        values,
        changed,
        probe=bool(values["enabled"] and (url_changed or reenabled)),
        heats=bool(values["hot"] and not current["hot"]),
    )


# Every column a change can write (the UPDATE sets all of them): all but the row's identity,
# version and timestamps.
CHANGEABLE = tuple(
    c for c in COLUMNS if c not in ("id", "tenant_id", "version", "created_at", "updated_at")
)
