"""ETags and conditional requests (domain/etags.py)."""

from __future__ import annotations

import uuid

from lookout_api.domain import etags

SID = uuid.UUID("00000000-0000-0000-0000-000000000001")


def test_etags_and_conditional_headers() -> None:
    tag = etags.etag(SID, 3)
    assert tag == f'"{SID}.3"'
    assert etags.none_match(tag, SID, 3) and etags.none_match(f'W/{tag}, "x"', SID, 3)
    assert etags.none_match("*", SID, 3) and not etags.none_match(tag, SID, 4)
    assert etags.expected_version(None, SID) is None
    assert etags.expected_version("*", SID) is None
    assert etags.expected_version(tag, SID) == 3
    assert etags.expected_version(f'"{uuid.uuid4()}.3"', SID) == -1  # another entity's tag
    assert etags.expected_version('"garbage"', SID) == -1
