"""Why a capture or probe failed, and whether trying again can help.

ffmpeg reports errors only as text on stderr, so the class is read from known phrases.
Permanent phrases win over transient ones: "404" after a reconnect is still a 404.
Anything unrecognised counts as transient; the retry bound keeps that finite.
"""

from __future__ import annotations

import re

from lookout_shared.logs import scrub

MAX_REASON_LENGTH = 500


class MediaError(Exception):
    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


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


# What the egress shim prints before it ends a run that tried to reach a refused address
# (adapters/egress.py): a decision of the policy, so trying again cannot help.
_EGRESS_REFUSAL = re.compile(r"^lookout-egress: (refused: .*)$", re.MULTILINE)


def classify_stderr(stderr: str, source: str | None = None) -> MediaError:
    """The failure an ffmpeg/ffprobe stderr describes.

    ``source`` (the input URL) is cut out first: it may carry credentials, which must not
    reach the job's error, and words in it ("403" in a path) must not decide the class.
    """
    if source:
        stderr = stderr.replace(source, "<input>")
    refused = _EGRESS_REFUSAL.search(stderr)
    if refused:
        return permanent(refused.group(1)[:MAX_REASON_LENGTH])
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    reason = scrub(" | ".join(lines[-3:]) or "exited without a message")[:MAX_REASON_LENGTH]
    if _PERMANENT.search(stderr):
        return permanent(reason)
    if _TRANSIENT.search(stderr):
        return transient(reason)
    return transient(f"unrecognised failure: {reason}")
