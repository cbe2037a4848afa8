"""AddressGuard over literal addresses and localhost (resolved locally; nothing connects)."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from lookout_shared.addresses import EgressPolicy
from lookout_shared.stream_urls import parse_stream_url
from lookout_snapshot_worker.adapters.guard import AddressGuard
from lookout_snapshot_worker.domain.failures import MediaError


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://127.0.0.1/live",
        "http://localhost:8080/x.mjpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "rtsp://10.20.30.40/live",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 form of the metadata address
        "http://[2002:c0a8:101::1]/",  # 6to4 form of 192.168.1.1
        # Numeric spellings of 127.0.0.1 that getaddrinfo (like ffmpeg's) accepts.
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://127.1/",
    ],
)
async def test_internal_targets_are_a_permanent_refusal(url: str) -> None:
    with pytest.raises(MediaError) as caught:
        await AddressGuard(EgressPolicy.build([])).check(parse_stream_url(url, None))
    assert not caught.value.transient
    assert "refused" in caught.value.reason


async def test_allowed_networks_let_a_camera_lan_through() -> None:
    guard = AddressGuard(
        EgressPolicy.build([ip_network("10.20.0.0/16"), ip_network("127.0.0.0/8")])
    )
    await guard.check(parse_stream_url("rtsp://10.20.30.40/live", None))
    await guard.check(parse_stream_url("rtsp://127.0.0.1:8554/live", None))


async def test_public_literal_addresses_pass() -> None:
    await AddressGuard(EgressPolicy.build([])).check(parse_stream_url("rtsp://8.8.8.8/live", None))


async def test_file_urls_need_no_resolution(tmp_path: object) -> None:
    await AddressGuard(EgressPolicy.build([])).check(
        parse_stream_url("file:///media/cam.mp4", "/media")
    )
