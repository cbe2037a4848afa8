"""ffmpeg/ffprobe argument lists: a whitelist per scheme, timeouts, scale, no shell."""

from __future__ import annotations

from pathlib import Path

import pytest
from lookout_shared.stream_urls import parse_stream_url
from lookout_snapshot_worker.adapters.commands import capture_command, probe_command

PIXELS = 7680 * 4320


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize(
    ("url", "protocols"),
    [
        ("http://cam.example/still.mjpg", {"http", "https", "tcp", "tls"}),
        ("https://cam.example/still.mjpg", {"http", "https", "tcp", "tls"}),
        ("https://cam.example/live/index.m3u8", {"http", "https", "tcp", "tls", "crypto"}),
        ("rtsp://cam.example/live", {"rtsp", "rtsps", "rtp", "srtp", "udp", "tcp", "tls"}),
        ("rtmp://cam.example/live", {"rtmp", "rtmps", "tcp", "tls"}),
    ],
)
def test_network_urls_get_their_scheme_protocols_and_timeouts(
    url: str, protocols: set[str]
) -> None:
    argv = capture_command(
        "ffmpeg", parse_stream_url(url, None), max_width=1920, io_timeout=7, max_pixels=PIXELS
    )
    assert set(option(argv, "-protocol_whitelist").split(",")) == protocols
    assert "file" not in protocols and "concat" not in protocols
    # The rtsp demuxer rejects rw_timeout; its socket timeout bounds it instead.
    timeout = "-timeout" if url.startswith("rtsp") else "-rw_timeout"
    assert option(argv, timeout) == "7000000"
    assert "-format_whitelist" not in argv
    # Every input option comes before the input itself.
    assert argv.index("-protocol_whitelist") < argv.index("-i")
    assert argv.index(timeout) < argv.index("-i")


def test_rtsp_and_http_also_get_a_socket_timeout() -> None:
    rtsp = capture_command(
        "ffmpeg",
        parse_stream_url("rtsp://cam/x", None),
        max_width=640,
        io_timeout=2.5,
        max_pixels=PIXELS,
    )
    assert option(rtsp, "-timeout") == "2500000"
    assert "-rw_timeout" not in rtsp
    rtmp = capture_command(
        "ffmpeg",
        parse_stream_url("rtmp://cam/x", None),
        max_width=640,
        io_timeout=2.5,
        max_pixels=PIXELS,
    )
    assert "-timeout" not in rtmp


def test_file_urls_may_only_read_files_with_container_demuxers(tmp_path: Path) -> None:
    clip = tmp_path / "cam.mp4"
    clip.touch()
    url = parse_stream_url(clip.as_uri(), str(tmp_path))
    argv = capture_command("/usr/bin/ffmpeg", url, max_width=1920, io_timeout=5, max_pixels=PIXELS)
    assert option(argv, "-protocol_whitelist") == "file"
    formats = option(argv, "-format_whitelist").split(",")
    assert "mp4" in formats
    assert not {"concat", "hls", "lavfi"} & set(formats)
    assert "-rw_timeout" not in argv


def test_capture_is_one_scaled_jpeg_frame_on_stdout() -> None:
    url = parse_stream_url("rtsp://user:pw@cam/live", None)
    argv = capture_command("/opt/ffmpeg", url, max_width=1280, io_timeout=5, max_pixels=PIXELS)
    assert argv[0] == "/opt/ffmpeg"
    assert argv[1:6] == ["-nostdin", "-hide_banner", "-loglevel", "error", "-protocol_whitelist"]
    assert option(argv, "-i") == "rtsp://user:pw@cam/live"  # one argument, never a shell word
    assert option(argv, "-frames:v") == "1"
    assert option(argv, "-vf") == "scale=w='min(iw,1280)':h=-2"
    assert option(argv, "-c:v") == "mjpeg"
    # A decoder option: it must come before the input it applies to.
    assert option(argv, "-max_pixels") == str(PIXELS)
    assert argv.index("-max_pixels") < argv.index("-i")
    assert argv[-1] == "pipe:1"


def test_a_capture_decodes_keyframes_only_so_joining_mid_gop_costs_no_decoding() -> None:
    url = parse_stream_url("rtsp://cam/live", None)
    argv = capture_command("ffmpeg", url, max_width=1280, io_timeout=5, max_pixels=PIXELS)
    assert option(argv, "-skip_frame") == "nokey"
    assert argv.index("-skip_frame") < argv.index("-i")  # the input's decoder, and its probe
    assert not any(a in ("sh", "bash", "-c") for a in argv)


def test_probe_asks_for_the_first_video_stream_as_json() -> None:
    url = parse_stream_url("https://cam/live.m3u8", None)
    argv = probe_command("ffprobe", url, io_timeout=3, max_pixels=PIXELS)
    assert argv[0] == "ffprobe"
    assert option(argv, "-protocol_whitelist") == "http,https,tcp,tls,crypto"
    assert option(argv, "-select_streams") == "v:0"
    assert (
        option(argv, "-show_entries")
        == "stream=width,height,codec_name,avg_frame_rate,r_frame_rate"
    )
    assert option(argv, "-of") == "json"
    assert option(argv, "-max_pixels") == str(PIXELS)
    assert argv[-2:] == ["-i", "https://cam/live.m3u8"]


def test_rtsp_runs_over_its_tcp_connection_only() -> None:
    # No RTP over UDP and no multicast group joined because a server's answer said so.
    for url in ("rtsp://cam/x", "rtsps://cam/x"):
        argv = probe_command(
            "ffprobe", parse_stream_url(url, None), io_timeout=2, max_pixels=PIXELS
        )
        assert option(argv, "-rtsp_transport") == "tcp"
        assert argv.index("-rtsp_transport") < argv.index("-i")
