"""A real RTSP server on 127.0.0.1 for the worker's tests (GStreamer's rtsp-server).

Run with Debian's python (``/usr/bin/python3``, which has ``gi``), not the project's venv:

    /usr/bin/python3 rtsp_server.py USER PASSWORD [OPEN_PORT]

Two servers on free ports serve a live H.264 test pattern (640x360, 15 fps) at ``/cam``:
one to anyone, one only with HTTP basic credentials USER:PASSWORD (401 otherwise). Two,
because GStreamer asks for credentials only on a server without a default (anonymous)
token, and then on every mount. Prints ``open PORT`` and ``private PORT`` once both listen,
then ``client open|private`` for every RTSP connection, and runs until killed.
"""

from __future__ import annotations

import sys

import gi  # type: ignore[import-not-found]

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # type: ignore[import-not-found]  # noqa: E402

PIPELINE = (
    "( videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=15/1"
    " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15"
    " ! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)
ROLE = "viewer"


def _factory() -> object:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    permissions = GstRtspServer.RTSPPermissions()
    for permission in (
        GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS,
        GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
    ):
        permissions.add_permission_for_role(ROLE, permission, True)
    factory.set_permissions(permissions)  # ignored by a server without auth
    return factory


def _basic_auth(user: str, password: str) -> object:
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE)
    auth = GstRtspServer.RTSPAuth()
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    return auth


def _server(name: str, auth: object | None = None, port: str = "0") -> object:
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)  # "0": the kernel picks a free port; get_bound_port tells which
    if auth is not None:
        server.set_auth(auth)
    server.get_mount_points().add_factory("/cam", _factory())
    server.connect("client-connected", lambda *_: print(f"client {name}", flush=True))
    if server.attach(None) == 0:
        sys.exit(f"{name} server cannot listen on 127.0.0.1")
    print(f"{name} {server.get_bound_port()}", flush=True)
    return server


def main(user: str, password: str, open_port: str = "0") -> None:
    """``open_port``: a fixed port for the open server, so a test can stop and restart it."""
    Gst.init(None)
    servers = [_server("open", port=open_port), _server("private", _basic_auth(user, password))]
    GLib.MainLoop().run()
    del servers  # referenced until the loop ends, so neither server is collected


if __name__ == "__main__":
    main(*sys.argv[1:4])
