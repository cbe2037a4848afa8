"""Real media sources on loopback for the worker's tests: an HTTP server (files with an
optional delay, HLS, MJPEG, an endless stream, a 404, a hostile playlist, a redirect) and a
tarpit that accepts connections and never answers."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

SECRET = b"top-secret-local-file-contents"


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def web_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web")
    src = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-t", "2", "-pix_fmt", "yuv420p"]
    _ffmpeg(*src, "-f", "mpegts", str(root / "cam.ts"))
    (root / "hls").mkdir()
    _ffmpeg(*src, "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
            str(root / "hls" / "index.m3u8"))  # fmt: skip
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1", str(root / "f.jpg"))
    secret = root.parent / "secret.ts"
    secret.write_bytes(SECRET)
    # Every line points somewhere an HLS playlist must not be able to reach.
    (root / "hostile.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n"
        f"#EXTINF:1,\nfile://{secret}\n#EXTINF:1,\nconcat:{secret}|{secret}\n"
        f"#EXTINF:1,\n{secret}\n#EXT-X-ENDLIST\n"
    )
    return root


@dataclass
class Sources:
    base: str  # http://127.0.0.1:<port>
    tarpit: str  # tcp host:port that accepts and never sends
    requests: list[str]


class _Handler(BaseHTTPRequestHandler):
    root: Path
    requests: list[str]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        time.sleep(float(query.get("delay", ["0"])[0]))
        path = parts.path
        try:
            if path == "/mjpeg":
                return self._mjpeg()
            if path == "/endless.ts":
                return self._endless()
            if path == "/redirect":
                self.send_response(302)
                self.send_header("Location", query.get("to", ["/cam.ts"])[0])
                self.end_headers()
                return None
            file = (self.root / path.lstrip("/")).resolve()
            if not file.is_relative_to(self.root) or not file.is_file():
                self.send_error(404)
                return None
            data = file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return None

    def _mjpeg(self) -> None:
        frame = (self.root / "f.jpg").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for _ in range(600):  # a minute of frames at most; the client leaves much earlier
            self.wfile.write(
                b"--frame\r\nContent-Type: image/jpeg\r\n"
                + f"Content-Length: {len(frame)}\r\n\r\n".encode()
                + frame
                + b"\r\n"
            )
            self.wfile.flush()
            time.sleep(0.1)

    def _endless(self) -> None:
        data = (self.root / "cam.ts").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        for _ in range(600):
            self.wfile.write(data)
            self.wfile.flush()
            time.sleep(0.1)


@pytest.fixture(scope="session")
def sources(web_root: Path) -> Iterator[Sources]:
    requests: list[str] = []
    handler = type("Handler", (_Handler,), {"root": web_root.resolve(), "requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tarpit = socket.socket()
    tarpit.bind(("127.0.0.1", 0))
    tarpit.listen(16)  # the kernel completes handshakes; nobody ever accepts or sends
    host, port = server.server_address[:2]
    try:
        yield Sources(f"http://{host!s}:{port}", f"127.0.0.1:{tarpit.getsockname()[1]}", requests)
    finally:
        server.shutdown()
        server.server_close()
        tarpit.close()
