"""Latest-frame sizes, validators, and signed image URLs: pure rules."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from lookout_api.adapters.frame_encoder import encode
from lookout_api.domain import frames, signed_urls
from lookout_api.domain.errors import Forbidden, InvalidInput
from lookout_shared import signed_urls as signing
from PIL import Image

HD = (1280, 720)


def asked(
    width: int | None = None, height: int | None = None, quality: int = 80
) -> frames.FrameRequest:
    return frames.FrameRequest.checked(width, height, quality, 1920)


def test_size_keeps_the_aspect_ratio_fits_the_box_and_never_enlarges() -> None:
    assert frames.fit(HD, asked(320), 1920) == (320, 180)
    assert frames.fit(HD, asked(None, 360), 1920) == (640, 360)
    assert frames.fit(HD, asked(640, 200), 1920) == (356, 200)  # fits inside the box
    assert frames.fit(HD, asked(1920), 1920) == HD  # no upscaling
    assert frames.fit(HD, asked(), 1920) == HD
    assert frames.fit((3840, 2160), asked(), 1920) == (1920, 1080)  # the maximum width
    assert frames.fit((10_000, 16), asked(16), 1920) == (16, 1)  # never a zero side


@pytest.mark.parametrize(
    ("width", "height", "quality"),
    [(15, None, 80), (1921, None, 80), (None, 15, 80), (None, None, 29), (None, None, 96)],
)
def test_sizes_and_qualities_out_of_bounds_are_refused(
    width: int | None, height: int | None, quality: int
) -> None:
    with pytest.raises(InvalidInput):
        frames.FrameRequest.checked(width, height, quality, 1920)


def test_etag_changes_with_frame_and_request_only() -> None:
    sid = uuid.uuid4()
    tag = frames.etag(sid, 1.5, asked(320))
    assert tag == frames.etag(sid, 1.5, asked(320))
    others = {
        frames.etag(sid, 1.6, asked(320)),
        frames.etag(sid, 1.5, asked(321)),
        frames.etag(sid, 1.5, asked(320, quality=81)),
        frames.etag(uuid.uuid4(), 1.5, asked(320)),
    }
    assert tag not in others and len(others) == 4
    assert frames.is_offline(10.5, 10) and not frames.is_offline(9.9, 10)


def test_encode_decodes_in_draft_mode_and_gives_the_size_asked() -> None:
    source = io.BytesIO()
    Image.new("RGB", (1920, 1080), (10, 200, 10)).save(source, "JPEG")
    out = encode(source.getvalue(), asked(240), 1920)
    assert (out.width, out.height) == (240, 135)
    with Image.open(io.BytesIO(out.jpeg)) as image:
        assert image.size == (240, 135) and image.format == "JPEG"


def test_signature_binds_tenant_stream_kind_and_expiry() -> None:
    key = signing.derive_key("k" * 40)
    tenant, stream = uuid.uuid4(), uuid.uuid4()
    sig = signing.signature(key, tenant, stream, "latest_jpg", 2_000)
    signed_urls.verify(key, tenant, stream, "latest_jpg", "2000", sig, now=1_000)
    for bad in (
        (tenant, uuid.uuid4(), "latest_jpg", "2000", sig),
        (uuid.uuid4(), stream, "latest_jpg", "2000", sig),
        (tenant, stream, "latest_snapshot", "2000", sig),
        (tenant, stream, "latest_jpg", "2001", sig),
        (tenant, stream, "latest_jpg", "2000", sig[:-1] + "x"),
        (tenant, stream, "latest_jpg", "2000", "é"),
        (tenant, stream, "latest_jpg", "-1", sig),
    ):
        with pytest.raises(Forbidden):
            signed_urls.verify(key, *bad, now=1_000)
    with pytest.raises(Forbidden, match="expired"):
        signed_urls.verify(key, tenant, stream, "latest_jpg", "2000", sig, now=2_000)
    other_key = signing.derive_key("j" * 40)
    with pytest.raises(Forbidden):
        signed_urls.verify(other_key, tenant, stream, "latest_jpg", "2000", sig, now=1_000)


def test_a_weak_signing_key_is_refused_in_production() -> None:
    from lookout_api.settings import ApiSettings
    from pydantic import ValidationError

    strong = "9f1c2e7a4b8d03f6a5e1c9b27d4f80a3e6b5c1d8f2a7e940b3c6d1f8a2e5b7c0"
    password = "Zq8vN3kR7tY2wX5pL9mB"
    production: dict[str, Any] = {
        "environment": "production",
        "jwt_secret": strong,
        "database_url": f"postgresql://lookout:{password}@db/lookout",
        "amqp_url": f"amqp://lookout:{password}@mq/lookout",
    }
    with pytest.raises(ValidationError, match="LOOKOUT_URL_SIGNING_KEY is too weak"):
        ApiSettings(**production, url_signing_key="changeme-please-0123456789abcdef")
    ok = ApiSettings(**production, url_signing_key=strong[::-1])
    assert ok.signing_key() != ApiSettings(**production).signing_key()
    # Empty means unset: the key derived from the JWT secret.
    unset = ApiSettings(**production, url_signing_key="")
    assert unset.url_signing_key is None
    assert unset.signing_key() == ApiSettings(**production).signing_key()
