"""The kept frame identities (adapters/frame_identities.py): served only while the
invalidation channel is in sync, and never kept when read across an invalidation."""

from __future__ import annotations

import uuid

from lookout_api.adapters.frame_identities import FrameIdentities


def test_nothing_is_served_or_kept_while_the_channel_is_down() -> None:
    ids, stream = FrameIdentities(), uuid.uuid4()
    ids.put(stream, 1.0, ids.seq)
    assert ids.get(stream) is None
    ids.resume()
    ids.put(stream, 1.0, ids.seq)
    assert ids.get(stream) == 1.0
    ids.pause()
    assert ids.get(stream) is None
    ids.resume()  # back in sync: invalidations sent meanwhile are lost, so start empty
    assert ids.get(stream) is None


def test_an_identity_read_across_an_invalidation_is_not_kept() -> None:
    ids, stream, other = FrameIdentities(), uuid.uuid4(), uuid.uuid4()
    ids.resume()
    seq = ids.seq
    ids.drop(other)  # any invalidation between the read and the put may have been for it
    ids.put(stream, 1.0, seq)
    assert ids.get(stream) is None
    ids.put(stream, 2.0, ids.seq)
    assert ids.get(stream) == 2.0
    ids.drop(stream)
    assert ids.get(stream) is None


def test_past_the_cap_reads_go_to_redis() -> None:
    ids = FrameIdentities(max_streams=2)
    ids.resume()
    streams = [uuid.uuid4() for _ in range(3)]
    for s in streams:
        ids.put(s, 1.0, ids.seq)
    assert [ids.get(s) for s in streams] == [1.0, 1.0, None]
