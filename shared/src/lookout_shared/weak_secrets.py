"""Telling a weak secret from a random one, so production refuses to start with one.

The rules suit generated secrets (``openssl rand -hex 32``, a password manager's output):
long enough, not a value published in this repository or a placeholder, no short pattern
repeated, and an entropy estimate (Shannon, over the characters and over the steps between
neighbours, which also exposes runs such as ``abcdef...``) of at least 3 bits per required
byte. A random hex string of the required length passes with room to spare; a word
repeated, a keyboard run or a padded short secret does not. The estimate is only a floor
check: it cannot prove a secret random, only catch one that is plainly not.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

DEV_JWT_SECRET = "lookout-development-secret-do-not-use-in-production"  # noqa: S105
DEV_PASSWORD = "lookout"  # noqa: S105 (the local stack's Postgres and RabbitMQ password)
# Placeholders the example files carry; compared without case, '-' and '_'.
PLACEHOLDERS = ("changeme", "replaceme", "yoursecret")
BITS_PER_BYTE = 3


def weakness(secret: str, min_bytes: int) -> str | None:
    """Why ``secret`` is too weak, in words that never quote it; None when it passes."""
    folded = secret.lower().replace("-", "").replace("_", "")
    if secret in (DEV_JWT_SECRET, DEV_PASSWORD) or any(p in folded for p in PLACEHOLDERS):
        return "it is a development or placeholder value"
    if len(secret.encode()) < min_bytes:
        return f"it is shorter than {min_bytes} bytes"
    if _repeats(secret):
        return "it repeats a short pattern"
    if len(set(secret)) < min_bytes // 4:
        return "it has too few distinct characters"
    steps = [ord(b) - ord(a) for a, b in itertools.pairwise(secret)]
    if min(_bits(secret), _bits(steps)) < BITS_PER_BYTE * min_bytes:
        return "it has too little entropy (a run, or a few characters used over and over)"
    return None


def url_password(url: str) -> str | None:
    """The password of a URL such as a DSN, or None when it has none."""
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def _repeats(text: str) -> bool:
    # A string with a period p shorter than half its length is p characters repeated.
    return any(text[p:] == text[:-p] for p in range(1, len(text) // 2 + 1))


def _bits(symbols: Sequence[object] | Iterable[object]) -> float:
    counts = Counter(symbols)
    n = sum(counts.values())
    return -sum(c * math.log2(c / n) for c in counts.values()) if n else 0.0
