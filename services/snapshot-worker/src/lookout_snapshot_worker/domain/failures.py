"""Why a capture or probe failed, whether trying again can help, and what may be said of it.

ffmpeg reports errors only as text on stderr, so the class is read from known phrases.
Permanent phrases win over transient ones: "404" after a reconnect is still a 404.
Anything unrecognised counts as transient; the retry bound keeps that finite.

Every failure also gets a category (``lookout_shared.contracts.ErrorCategory``), read from
the same text (ffmpeg's stderr, or the worker's own message): the category is all a viewer
learns; the reason, which may name the host and path, is for operators. A reason never
holds credentials (URLs in it are masked) nor ffmpeg's heap addresses (``[rtsp @ 0x55d5…]``
→ ``[rtsp]``), which only make equal failures look different.
"""

from __future__ import annotations

import re

from lookout_shared.contracts import ErrorCategory
from lookout_shared.logs import scrub
from lookout_shared.stream_urls import mask_credentials

MAX_REASON_LENGTH = 500


class MediaError(Exception):
    def __init__(
        self, reason: str, *, transient: bool, category: ErrorCategory | None = None
    ) -> None:
        reason = clean_reason(reason)
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.category: ErrorCategory = category or categorize(reason)


def permanent(reason: str) -> MediaError:
    return MediaError(reason, transient=False)


def transient(reason: str) -> MediaError:
    return MediaError(reason, transient=True)


_PERMANENT = re.compile(
    r"(?:returned|failed:)\s*(?:40[0134]|4xx)|unauthori[sz]ed|forbidden|\bnot found\b"
    r"|no such file|invalid data found|not on whitelist|unsupported codec"
    r"|could not find codec|permission denied|invalid argument|does not contain any stream"
    r"|no video stream|matches no streams|name or service not known"
    r"|no address associated",
    re.IGNORECASE,
)
_TRANSIENT = re.compile(
    r"connection refused|connection reset|timed out|timeout|(?:returned|failed:)\s*(?:5\d\d|5xx)"
    r"|network is unreachable|no route to host|temporary failure|broken pipe"
    r"|end of file|i/o error|resource temporarily unavailable",
    re.IGNORECASE,
)

# The first category whose phrases appear wins; the order puts what the source said about
# itself (401, 404, bad media) before how the connection went, as permanence does above.
_PHRASES: tuple[tuple[ErrorCategory, str], ...] = (
    ("unknown", r"^cannot run "),  # the worker's own fault (ffmpeg missing), not the source
    ("circuit_open", r"circuit open"),
    (
        "not_allowed",
        r"not on whitelist|protocol not found|refused to connect to|invalid stream url"
        r"|is not allowed"
        r"|address is not public|not a public address|metadata address",
    ),
    (
        "unauthorized",
        r"(?:returned|failed:)\s*40[13]|unauthori[sz]ed|forbidden|permission denied",
    ),
    (
        "invalid_media",
        r"invalid data found|unsupported codec|could not find codec|invalid argument"
        r"|does not contain any stream|no video stream|matches no streams|no frame"
        r"|moov atom not found|(?:decoder|codec)\b.*\bnot found",
    ),
    ("not_found", r"(?:returned|failed:)\s*404|404 not found|no such file|stream not found"),
    (
        "unreachable",
        r"name or service not known|no address associated|cannot resolve|resolving"
        r"|network is unreachable|no route to host|temporary failure in name",
    ),
    ("timeout", r"timed out|timeout|did not answer"),
    ("refused", r"connection refused|connection reset|broken pipe|cannot open connection"),
    (
        "source_error",
        r"(?:returned|failed:)\s*(?:5\d\d|5xx|4\d\d|4xx)|end of file|i/o error"
        r"|immediate exit requested|stream ends prematurely",
    ),
)
_CATEGORIES = [(category, re.compile(phrases, re.IGNORECASE)) for category, phrases in _PHRASES]
# Heap addresses in ffmpeg's context prefixes: "[tcp @ 0x55d20a46d880]".
_HEAP_ADDRESS = re.compile(r"\s*@\s*0x[0-9a-f]+(?=\])", re.IGNORECASE)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)


def categorize(text: str) -> ErrorCategory:
    for category, phrases in _CATEGORIES:
        if phrases.search(text):
            return category
    return "unknown"


def clean_reason(text: str) -> str:
    """``text`` as it may be stored and shown to operators: ffmpeg's heap addresses gone,
    every URL's credentials masked, other secrets scrubbed, the length bounded."""
    text = _HEAP_ADDRESS.sub("", text)
    text = _URL.sub(lambda url: mask_credentials(url[0]), text)
    return scrub(text)[:MAX_REASON_LENGTH]


# What the egress shim prints before it ends a run that tried to reach a refused address
# (adapters/egress.py): a decision of the policy, so trying again cannot help.
_EGRESS_REFUSAL = re.compile(r"^lookout-egress: (refused: .*)$", re.MULTILINE)


def classify_stderr(stderr: str, source: str | None = None) -> MediaError:
    """The failure an ffmpeg/ffprobe stderr describes.

    ``source`` (the input URL) is cut out first: it may carry credentials, which must not
    reach the job's error, and words in it ("403" in a path) must not decide the class nor
    the category.
    """
    if source:
        stderr = stderr.replace(source, "<input>")
    refused = _EGRESS_REFUSAL.search(stderr)
    if refused:
        return MediaError(refused.group(1), transient=False, category="not_allowed")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    reason = " | ".join(lines[-3:]) or "exited without a message"
    # Nor do words in the URLs ffmpeg spells its own way ("tcp://cam:554?timeout=5000000").
    said = _URL.sub("<url>", stderr)
    category = categorize(said)
    if _PERMANENT.search(said):
        return MediaError(reason, transient=False, category=category)
    if _TRANSIENT.search(said):
        return MediaError(reason, transient=True, category=category)
    return MediaError(f"unrecognised failure: {reason}", transient=True, category=category)
