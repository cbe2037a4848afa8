"""The access log: one line per HTTP request, with uvicorn's message (``client - "METHOD
path?query HTTP/1.1" status``) and fields, at the cost of a formatted line. Its logger is
``lookout.access``: uvicorn silences its own ``uvicorn.access`` when told not to write it.
Written when the response starts, from inside the request's context, so the line names
the tenant and the trace as uvicorn's did.

uvicorn's own line goes through the JSON formatter's full scrub (a dozen regular
expressions) on every request. Here only what can hold a secret is scrubbed, where it is
written: the query string (``?token=``), and the path unless the caller vouches that it
holds only ids (the read cache's paths). The line is then marked so the formatter does not
scrub it again.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.types import Scope

from lookout_shared.logs import PRESCRUBBED, scrub

ACCESS = logging.getLogger("lookout.access")
_EXTRA = {PRESCRUBBED: True}
# Scrubbed query strings: hot paths repeat theirs (``limit=50``), and scrub() costs a dozen
# regular expressions. Short ones only, and a bounded number.
_QUERIES: dict[str, str] = {}
_QUERIES_MAX = 1024
_QUERY_MAX_CHARS = 256


def _scrubbed_query(query: str) -> str:
    known = _QUERIES.get(query)
    if known is not None:
        return known
    scrubbed = scrub(query)
    if len(query) <= _QUERY_MAX_CHARS:
        if len(_QUERIES) >= _QUERIES_MAX:
            _QUERIES.clear()
        _QUERIES[query] = scrubbed
    return scrubbed


def log_request(scope: Scope, status: int, *, plain_path: bool = False) -> None:
    """Write the access line of ``scope``'s request, answered ``status``. ``plain_path``:
    the path is known to hold nothing but fixed words and ids."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    path = quote(scope.get("root_path", "") + scope["path"])
    if not plain_path:
        path = scrub(path)
    query = scope.get("query_string")
    if query:
        path = f"{path}?{_scrubbed_query(query.decode('latin-1'))}"
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else "-"
    ACCESS.info(
        '%s - "%s %s HTTP/%s" %d',
        address,
        scope["method"],
        path,
        scope.get("http_version", "1.1"),
        status,
        extra=_EXTRA,
    )
