"""How a handler that goes on without Redis says so: the same way on every path."""

from __future__ import annotations

import logging

from lookout_api.ports import RedisUnavailable


def log_unavailable(log: logging.Logger, message: str, exc: RedisUnavailable) -> None:
    """A Redis failure as a warning with its cause (``message`` has one ``%r``); a skip (the
    breaker open after a failure a moment ago, which it logged) only at debug level."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if exc.skipped:
        log.debug(message, cause)
    else:
        log.warning(message, cause)
