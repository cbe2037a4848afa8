"""The callers a cached read knows by their Authorization header's bytes: a remembered token
is refused again once it expires, and an API key is never remembered there (its
revocation clears the key cache at once, on every process)."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import cast

from lookout_api.bootstrap import Deps
from lookout_api.domain import api_keys
from lookout_api.handlers.auth import KnownCallers
from lookout_shared.notified_cache import TtlCache
from lookout_shared.tokens import TokenCodec

CODEC = TokenCodec("s" * 32, "lookout", "lookout-api")


class _Deps:
    def __init__(self) -> None:
        self.codec = CODEC
        self.key_cache: TtlCache[dict[str, object]] = TtlCache(60)


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    deps, callers = cast(Deps, _Deps()), KnownCallers()
    tenant = uuid.uuid4()
    header = f"Bearer {CODEC.issue(uuid.uuid4(), tenant, 'viewer', timedelta(seconds=1))}"
    principal = callers.principal(deps, header.encode())
    assert principal is not None and principal.tenant_id == tenant
    assert callers.principal(deps, header.encode()) is principal  # remembered
    deadline = time.monotonic() + 5
    while callers.principal(deps, header.encode()) is not None:
        assert time.monotonic() < deadline, "an expired token was still accepted"
        time.sleep(0.05)


def test_an_api_key_is_taken_from_the_key_cache_every_time() -> None:
    """A key cleared from the key cache (a revocation's notification) is unknown at once."""
    deps, callers = _Deps(), KnownCallers()
    key = "lk_" + "a" * 40
    row = {"created_by": uuid.uuid4(), "tenant_id": uuid.uuid4(), "role": "viewer"}
    deps.key_cache.put(api_keys.digest(key), {**row, "id": uuid.uuid4()}, deps.key_cache.epoch)
    header = f"Bearer {key}".encode()
    assert callers.principal(cast(Deps, deps), header) is not None
    deps.key_cache.clear()
    assert callers.principal(cast(Deps, deps), header) is None


def test_other_schemes_and_garbage_are_not_callers() -> None:
    deps, callers = cast(Deps, _Deps()), KnownCallers()
    for header in (b"", b"Basic abc", b"Bearer ", b"Bearer not-a-token"):
        assert callers.principal(deps, header) is None
