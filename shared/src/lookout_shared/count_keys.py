"""The Redis key names of the counts: a contract between the count-aggregator (which writes
them) and the api (which reads the count hashes).

- ``{prefix}counts:tenant:{tenant_id}`` and ``{prefix}counts:platform``: hashes of
  ``field -> count``; only positive counts are kept (a field that drops to zero is removed).
- ``{prefix}counts:entity:{entity_type}:{entity_id}``: the entity's ``version`` and the
  fields it currently contributes (each ``1``); a deletion leaves just ``version``.
- ``{prefix}counts:seen:{event_id}``: an event already applied (expires).
- ``{prefix}counts:gen:{tenant_id}``: the tenant's generation; its hash counts the entity
  states whose ``gen`` is at least this (a rebuild raises it, see ``apply_events.lua``).
- ``{prefix}counts:rebuild:pending:{tenant_id}`` and ``...:rebuild:scratch:{tenant_id}``: the
  generation a running rebuild will swap in, and its counts so far.
- ``{prefix}counts:rebuild:lock``: held by the one rebuild that may run at a time.
- ``{prefix}counts:drift:last``: the last drift check's result (``lookout_shared.drift_report``).
- ``{prefix}counts:epoch``: whether the counts may be trusted (``lookout_shared.counts_epoch``);
  ``{prefix}counts:epoch:pending``: the token of the full rebuild that will write it.
"""

from __future__ import annotations

import uuid

from lookout_shared.counts_epoch import epoch_key
from lookout_shared.drift_report import report_key
from lookout_shared.redis import Keys


def tenant_key(keys: Keys, tenant_id: uuid.UUID | str) -> str:
    return keys("counts", "tenant", tenant_id)


def platform_key(keys: Keys) -> str:
    return keys("counts", "platform")


def scope_key(keys: Keys, tenant_id: uuid.UUID | None) -> str:
    """The count hash of a tenant, or of the platform (every tenant) when None."""
    return platform_key(keys) if tenant_id is None else tenant_key(keys, tenant_id)


class CountKeys:
    """Every count key of one deployment's prefix."""

    def __init__(self, prefix: str) -> None:
        self._keys = Keys(prefix)
        # Built per event, in batches of hundreds: the constant part once.
        self._seen = self._keys("counts", "seen", "")
        self._entity = self._keys("counts", "entity", "")

    def tenant(self, tenant_id: uuid.UUID | str) -> str:
        return tenant_key(self._keys, tenant_id)

    def platform(self) -> str:
        return platform_key(self._keys)

    def entity(self, entity_type: str, entity_id: uuid.UUID | str) -> str:
        return f"{self._entity}{entity_type}:{entity_id}"

    def seen(self, event_id: uuid.UUID | str) -> str:
        return f"{self._seen}{event_id}"

    def tenant_pattern(self) -> str:
        """A SCAN pattern for every tenant hash (the prefix's own ``*`` are escaped)."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.tenant(""))
        return escaped + "*"

    def generation(self, tenant_id: uuid.UUID | str) -> str:
        return self._keys("counts", "gen", tenant_id)

    def pending(self, tenant_id: uuid.UUID | str) -> str:
        return self._keys("counts", "rebuild", "pending", tenant_id)

    def scratch(self, tenant_id: uuid.UUID | str) -> str:
        return self._keys("counts", "rebuild", "scratch", tenant_id)

    def rebuild_lock(self) -> str:
        return self._keys("counts", "rebuild", "lock")

    def epoch(self) -> str:
        return epoch_key(self._keys)

    def epoch_pending(self) -> str:
        return self._keys("counts", "epoch", "pending")

    def drift_report(self) -> str:
        return report_key(self._keys)
