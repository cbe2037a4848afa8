"""Which stream URLs Lookout accepts, and how they are shown.

The api checks a URL when a stream is created or changed; the worker checks it again before
ffmpeg sees it (the database is not a trust boundary we skip). Only the listed schemes pass;
``file`` passes only when the deployment names a media directory, and only for a path inside
it. Credentials in a URL (its user info, and the values of secret parameters: see
``SECRET_PARAMS``) are masked by ``mask_credentials`` wherever the URL is shown, audited,
logged or kept in an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

NETWORK_SCHEMES = {"rtsp": "rtsp", "rtsps": "rtsp", "rtmp": "rtmp", "http": "http", "https": "http"}
MAX_URL_LENGTH = 2048
MASK = "***"

# Parameters whose value is a credential, case-insensitively: these names exactly, and any
# name containing one of SECRET_WORDS (``X-Amz-Signature``, ``auth_token``, ``db_password``).
# User names count too, as the user info's do. Cameras take them in the query
# (``?token=``) and some DVRs in the path (``/user=admin&password=x&channel=1``).
SECRET_PARAMS = frozenset(
    {"user", "username", "usr", "pass", "pwd", "key", "auth", "sig", "session", "sessionid"}
)
SECRET_WORDS = ("password", "passwd", "secret", "token", "apikey", "api_key", "api-key",
                "signature", "credential")  # fmt: skip
# name=value at the start or after ? & ; or / (where a URL's parameters start); the value
# runs to the next & (or # or the end of the URL): a value containing / ; or = is masked whole.
_PARAM = re.compile(r"(?P<sep>^|[?&;/])(?P<name>[^=&;/?#\s\"'<>]+)=(?P<value>[^&#\s\"'<>]+)")


class InvalidStreamUrl(ValueError):
    pass


@dataclass(frozen=True)
class StreamUrl:
    url: str
    scheme: str
    kind: str  # rtsp | rtmp | hls | http | file
    host: str | None
    path: Path | None  # set for file URLs


def parse_stream_url(url: str, media_dir: str | None) -> StreamUrl:
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidStreamUrl(f"url must be 1 to {MAX_URL_LENGTH} characters")
    if url != url.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidStreamUrl("url must not contain whitespace or control characters")
    if url.startswith("-"):
        raise InvalidStreamUrl("url must not start with '-'")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError as exc:
        raise InvalidStreamUrl(f"url is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        return StreamUrl(url, scheme, "file", None, _media_path(parts, media_dir))
    if scheme not in NETWORK_SCHEMES:
        allowed = ", ".join(sorted(NETWORK_SCHEMES) + (["file"] if media_dir else []))
        raise InvalidStreamUrl(
            f"scheme {scheme or '(none)'!r} is not allowed; use one of {allowed}"
        )
    if not parts.hostname:
        raise InvalidStreamUrl("url has no host")
    if port == 0:
        raise InvalidStreamUrl("port 0 is not allowed")
    kind = NETWORK_SCHEMES[scheme]
    if kind == "http" and parts.path.lower().endswith(".m3u8"):
        kind = "hls"
    return StreamUrl(url, scheme, kind, parts.hostname, None)


def _media_path(parts: SplitResult, media_dir: str | None) -> Path:
    if not media_dir:
        raise InvalidStreamUrl("file URLs are disabled (no media directory is configured)")
    if parts.netloc not in ("", "localhost"):
        raise InvalidStreamUrl("file URLs must not name a host")
    root = Path(os.path.realpath(media_dir))
    path = Path(os.path.realpath(unquote(parts.path)))
    if not path.is_relative_to(root):
        raise InvalidStreamUrl("file URLs must point inside the media directory")
    return path


def is_secret_param(name: str) -> bool:
    lowered = unquote(name).lower()
    return lowered in SECRET_PARAMS or any(word in lowered for word in SECRET_WORDS)


def mask_secret_params(text: str) -> str:
    """Every secret parameter's value (see ``SECRET_PARAMS``) in ``text`` → ``***``; the
    other parameters and everything else unchanged. Also used on log lines."""

    def masked(match: re.Match[str]) -> str:
        if not is_secret_param(match["name"]):
            return match[0]
        return f"{match['sep']}{match['name']}={MASK}"

    return _PARAM.sub(masked, text)


def mask_credentials(url: str) -> str:
    """The URL as it may be shown: user info and secret parameters masked, the rest as is.

    ``rtsp://admin:pw@cam/live?token=abc&channel=1`` → ``rtsp://***:***@cam/live?token=***&channel=1``
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<malformed url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}:{MASK}@{netloc.rsplit('@', 1)[1]}"
    path, query = mask_secret_params(parts.path), mask_secret_params("?" + parts.query)[1:]
    if (netloc, path, query) == (parts.netloc, parts.path, parts.query):
        return url  # as given, byte for byte
    return urlunsplit(parts._replace(netloc=netloc, path=path, query=query))
