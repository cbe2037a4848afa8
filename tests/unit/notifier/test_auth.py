"""Where a connection's token is read from."""

from __future__ import annotations

from lookout_notifier.entrypoints.auth import credentials


def test_token_from_header_then_subprotocol_then_query() -> None:
    header = credentials({"authorization": "Bearer abc"}, [], {"token": "q"})
    assert (header.token, header.subprotocol) == ("abc", None)
    sub = credentials({}, ["bearer", "tok.en"], {"token": "q"})
    assert (sub.token, sub.subprotocol) == ("tok.en", "bearer")
    assert credentials({}, [], {"token": "q"}).token == "q"
    assert credentials({"authorization": "Basic xyz"}, [], {}).token is None
    assert credentials({}, ["bearer"], {}).token is None
