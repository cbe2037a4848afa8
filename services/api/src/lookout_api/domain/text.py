"""Text Postgres can store: no NUL character and nothing that is not valid UTF-8.

Postgres ``text`` cannot hold ``\\x00``, and asyncpg cannot encode a lone surrogate (JSON's
``"\\ud800"`` decodes to one), so such a value would reach the database and fail there as a
500. Every string a client sends is checked against this rule before any handler runs: body
fields (the request models' base class), query parameters (an app-wide dependency) and the
values a cursor carries.
"""

from __future__ import annotations

from typing import Any


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    if "\x00" in value:
        return f"must not contain the NUL character (\\x00, at position {value.index(chr(0))})"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"must be valid Unicode text (an unpaired surrogate at position {exc.start})"
    return None


def check_text(value: Any) -> Any:
    """``value`` unchanged; ValueError naming the problem when it holds (in a string, list or
    mapping, at any depth) text Postgres cannot store."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(problem)
    elif isinstance(value, list | tuple | set | frozenset):
        for i, item in enumerate(value):
            try:
                check_text(item)
            except ValueError as exc:
                raise ValueError(f"item {i}: {exc}") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key)
            check_text(item)
    return value
