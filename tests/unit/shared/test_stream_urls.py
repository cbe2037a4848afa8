"""Which stream URLs pass, and how credentials are masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from lookout_shared.stream_urls import InvalidStreamUrl, mask_credentials, parse_stream_url


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("rtsp://cam.example.com:554/live", "rtsp"),
        ("rtsps://cam.example.com/live", "rtsp"),
        ("rtmp://media.example.com/app/key", "rtmp"),
        ("https://cdn.example.com/live/index.m3u8", "hls"),
        ("http://cam.example.com/snapshot.jpg", "http"),
    ],
)
def test_network_schemes_and_kinds(url: str, kind: str) -> None:
    assert parse_stream_url(url, None).kind == kind


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://cam/x", "scheme 'ftp' is not allowed"),
        ("concat:a.mp4|b.mp4", "is not allowed"),
        ("-f lavfi", "must not start with '-'"),
        ("rtsp://cam/x\n-i", "control characters"),
        (" rtsp://cam/x", "whitespace"),
        ("rtsp:///x", "no host"),
        ("rtsp://cam:99999/x", "malformed"),
        ("file:///etc/passwd", "file URLs are disabled"),
        ("x" * 3000, "1 to 2048"),
    ],
)
def test_refused_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(InvalidStreamUrl, match=reason):
        parse_stream_url(url, None)


def test_file_urls_only_inside_the_media_dir(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "cam.mp4").write_bytes(b"")
    (tmp_path / "secret").write_text("x")
    (media / "link").symlink_to(tmp_path / "secret")
    assert parse_stream_url((media / "cam.mp4").as_uri(), str(media)).kind == "file"
    for outside in [
        (tmp_path / "secret").as_uri(),
        f"{media.as_uri()}/../secret",
        (media / "link").as_uri(),
    ]:
        with pytest.raises(InvalidStreamUrl, match="inside the media directory"):
            parse_stream_url(outside, str(media))
    with pytest.raises(InvalidStreamUrl, match="must not name a host"):
        parse_stream_url(f"file://evil.example.com{media}/cam.mp4", str(media))


def test_credentials_are_masked() -> None:
    assert mask_credentials("rtsp://admin:pa@ss@cam/x") == "rtsp://***:***@cam/x"
    assert mask_credentials("rtsp://cam/x") == "rtsp://cam/x"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "rtsp://cam.example/live?token=abc&channel=1",
            "rtsp://cam.example/live?token=***&channel=1",
        ),
        ("rtsp://u:p@cam/x?PassWord=a/b==&pwd=1", "rtsp://***:***@cam/x?PassWord=***&pwd=***"),
        (
            "https://cdn.example/x.m3u8?X-Amz-Credential=AK%2F1&X-Amz-Signature=f00&v=2",
            "https://cdn.example/x.m3u8?X-Amz-Credential=***&X-Amz-Signature=***&v=2",
        ),
        (
            "http://cam/x?key=k&apikey=a&api_key=b&access_token=c",
            "http://cam/x?key=***&apikey=***&api_key=***&access_token=***",
        ),
        (
            "rtsp://cam/x?auth=a&sig=s&secret=z&user=u&username=n&pass=p",
            "rtsp://cam/x?auth=***&sig=***&secret=***&user=***&username=***&pass=***",
        ),
        # DVRs that take their login in the path.
        (
            "rtsp://cam:554/user=admin&password=hunter2&channel=1&stream=0.sdp",
            "rtsp://cam:554/user=***&password=***&channel=1&stream=0.sdp",
        ),
    ],
)
def test_secret_query_parameters_are_masked(url: str, shown: str) -> None:
    assert mask_credentials(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://cam/live?channel=1&subtype=0&keyframe=1&monkey=2",
        "http://cam/x.m3u8?token=",  # nothing to hide
        "file:///media/cam.mp4",
        "rtsp://cam/x?",
    ],
)
def test_urls_without_secrets_are_shown_as_given(url: str) -> None:
    assert mask_credentials(url) == url
