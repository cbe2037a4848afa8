"""What the api's start-up made lives as long as the process: it is frozen out of the garbage
collector's sight, so a full collection under load scans only what requests make (before,
each one walked every object of the app, its models and libraries: the cached reads' p99)."""

from __future__ import annotations

import gc

from .conftest import Api


async def test_what_start_up_made_is_frozen_out_of_the_collectors_sight(api: Api) -> None:
    assert api.app.state.deps is not None
    assert gc.get_freeze_count() > 10_000
