"""The api's in-process cache of API key lookups, so a machine's requests do not each hit
Postgres (lookout_shared.notified_cache).

Revocation is immediate on every api process: a trigger on ``users`` and ``api_keys`` sends
a ``lookout_principals`` notification when a change commits (a key revoked, a user deleted,
disabled or given another role, a tenant deleted with its users), and the listener clears
the cache of every process. Unknown keys are cached too, so a flood of garbage keys costs
one query per key per TTL.
"""

from __future__ import annotations

from lookout_shared.notified_cache import ChangeListener, TtlCache

CHANNEL = "lookout_principals"
APPLICATION_NAME = "lookout-api principal changes"  # how the connection shows in Postgres


def principal_changes(dsn: str, cache: TtlCache[dict[str, object]]) -> ChangeListener:
    """The listener that clears ``cache`` whenever a user or API key changes."""
    return ChangeListener(dsn, CHANNEL, cache, application_name=APPLICATION_NAME)
