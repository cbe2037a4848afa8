"""Text Postgres cannot store is refused before any query (domain/text.py), and the request
models name the field holding it."""

from __future__ import annotations

import pytest
from lookout_api.domain.text import check_text, text_problem
from lookout_api.entrypoints.stream_schemas import BulkIn, StreamIn
from pydantic import ValidationError


def test_nul_and_unpaired_surrogates_are_not_storable_text() -> None:
    assert text_problem("plain text, tabs\tand ümlauts") is None
    assert "NUL" in (text_problem("a\x00b") or "")
    assert "surrogate" in (text_problem("a\ud800") or "")
    assert check_text(["ok", {"k": ("v",)}]) == ["ok", {"k": ("v",)}]
    with pytest.raises(ValueError, match=r"item 1: .*NUL"):
        check_text(["ok", "b\x00"])
    with pytest.raises(ValueError, match="NUL"):
        check_text({"k\x00": "v"})


def test_request_models_name_the_field_holding_a_nul() -> None:
    with pytest.raises(ValidationError) as bad:
        StreamIn.model_validate({"name": "cam", "url": "rtsp://x/y", "tags": ["a", "b\x00"]})
    assert [e["loc"] for e in bad.value.errors()] == [("tags",)]
    assert "item 1" in bad.value.errors()[0]["msg"]
    with pytest.raises(ValidationError) as bad:
        BulkIn.model_validate({"items": [{"name": "ok"}, {"name": "n\x00"}]})
    assert [e["loc"] for e in bad.value.errors()] == [("items", 1, "name")]
