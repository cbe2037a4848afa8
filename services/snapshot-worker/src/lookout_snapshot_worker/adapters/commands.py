"""ffmpeg and ffprobe argument lists for one stream URL.

Each input may only use the protocols its scheme needs (``-protocol_whitelist``): an HLS
playlist cannot pull in ``file:`` or ``concat:`` URLs, and a local file cannot reach the
network. Local files may also only be read by the common container demuxers, so a file in
the media directory cannot be a playlist or concat script that points outside it.

The worker runs ffprobe with ``probe_command``. ``capture_command`` is the reference for a
cold capture, which the worker does not run as a process: a capture child does the same
in-process through PyAV (capture_child.py, with the same ``open_options``). The benchmark runs it as its raw ffmpeg baseline, and a test holds the
children's frames to its output.
"""

from __future__ import annotations

from lookout_shared.stream_urls import StreamUrl

PROTOCOLS: dict[str, tuple[str, ...]] = {
    "file": ("file",),
    "http": ("http", "https", "tcp", "tls"),
    "hls": ("http", "https", "tcp", "tls", "crypto"),
    "rtsp": ("rtsp", "rtsps", "rtp", "srtp", "udp", "tcp", "tls"),
    "rtmp": ("rtmp", "rtmps", "tcp", "tls"),
}
FILE_FORMATS = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "mpegts",
    "avi",
    "flv",
    "h264",
    "hevc",
    "mpeg",
    "mjpeg",
    "image2",
    "jpeg_pipe",
    "png_pipe",
)
MICROSECONDS = 1_000_000


def open_options(kind: str, io_timeout: float) -> dict[str, str]:
    """The input's options, by FFmpeg's names: whitelists, and I/O timeouts for network
    sources. Capture children and hot readers open their input with them (PyAV); ffprobe
    gets them as arguments (``input_options``)."""
    try:
        options = {"protocol_whitelist": ",".join(PROTOCOLS[kind])}
    except KeyError:
        raise ValueError(f"no protocol whitelist for stream kind {kind!r}") from None
    if kind == "file":
        options["format_whitelist"] = ",".join(FILE_FORMATS)
        return options
    micros = str(max(1, int(io_timeout * MICROSECONDS)))
    # rw_timeout bounds every read/write of a protocol that FFmpeg opens through avio;
    # "timeout" is the socket timeout of the rtsp and http protocols (both in microseconds).
    # The rtsp demuxer opens its own connections and rejects rw_timeout ("Option
    # rw_timeout not found"), so rtsp gets only "timeout".
    if kind != "rtsp":
        options["rw_timeout"] = micros
    if kind in ("rtsp", "http", "hls"):
        options["timeout"] = micros
    if kind in ("http", "hls"):
        # The guard checked the URL's host; a redirect could lead anywhere (the metadata
        # service), so FFmpeg must not follow one. Camera URLs are expected to be final.
        options["max_redirects"] = "0"
    if kind == "rtsp":
        # Interleaved over the RTSP connection only: no RTP over UDP, and never a multicast
        # group joined on the say-so of a server's answer (the egress shim judges sends only).
        options["rtsp_transport"] = "tcp"
    return options


def input_options(url: StreamUrl, io_timeout: float) -> list[str]:
    """``open_options`` as the arguments that go before ``-i``."""
    return [
        arg
        for name, value in open_options(url.kind, io_timeout).items()
        for arg in (f"-{name}", value)
    ]


def decoder_options(max_pixels: int) -> list[str]:
    """Options of the input's decoder: refuse frames over ``max_pixels`` before allocating
    them. ``max_pixels`` is checked wherever a decoder sets its frame size (h264, hevc,
    mjpeg, png and the other common ones), so a 16000x16000 frame fails at once instead of
    taking hundreds of megabytes."""
    return ["-max_pixels", str(max_pixels)]


def capture_command(
    ffmpeg: str, url: StreamUrl, *, max_width: int, io_timeout: float, max_pixels: int
) -> list[str]:
    """One video frame, scaled down (never up) to ``max_width``, as a JPEG on stdout."""
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
        *input_options(url, io_timeout),
        # One decoding thread: frame threading would decode several frames before the
        # first comes out, and the worker runs many captures side by side anyway.
        "-threads", "1",
        # Decode keyframes only: a capture that joins a live stream between two keyframes
        # shows the next whole picture, never one decoded from missing references (grey,
        # smeared), and the frames skipped on the way, or while ffmpeg probes the input,
        # cost no decoding. An H.264 recovery point (intra refresh) counts as a keyframe.
        "-skip_frame", "nokey",
        *decoder_options(max_pixels),
        "-i", url.url,
        "-map", "0:v:0", "-an", "-sn", "-dn",
        "-frames:v", "1",
        # min() keeps small frames as they are; -2 keeps the aspect ratio with an even height.
        "-vf", f"scale=w='min(iw,{max_width})':h=-2",
        "-c:v", "mjpeg", "-q:v", "3",
        "-f", "image2pipe", "pipe:1",
    ]  # fmt: skip


def probe_command(ffprobe: str, url: StreamUrl, *, io_timeout: float, max_pixels: int) -> list[str]:
    """Width, height, codec and frame rates of the first video stream, as JSON on stdout.
    ffprobe decodes a frame to find them, so its decoder gets the same pixel cap."""
    return [
        ffprobe, "-hide_banner", "-loglevel", "error",
        *input_options(url, io_timeout),
        *decoder_options(max_pixels),
        "-select_streams", "v:0",
        "-show_entries", "stream=width,height,codec_name,avg_frame_rate,r_frame_rate",
        "-of", "json",
        "-i", url.url,
    ]  # fmt: skip
