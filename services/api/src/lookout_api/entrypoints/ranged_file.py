"""A stored file over HTTP with validators, conditional requests and one byte range.

Starlette's FileResponse serves ranges but ignores If-None-Match and If-Modified-Since, takes
its validators from the file's mtime, and answers a malformed Range with a plain-text 400.
This answers 304 for a matching validator, 206 for one satisfiable range, and a 416 problem
(with ``Content-Range: bytes */<size>``) for any other single range; a request for several
ranges gets the whole file. The body is read in chunks: memory stays constant for any size.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import anyio
from fastapi.responses import Response, StreamingResponse
from lookout_shared.http import Problem

CHUNK_BYTES = 64 * 1024
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.ASCII | re.IGNORECASE)


class UnsatisfiableRange(ValueError):
    pass


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The byte range (first, last inclusive) a Range header asks for; None for the whole
    file (several ranges). Raises UnsatisfiableRange for a malformed or unsatisfiable one."""
    spec = "".join(header.split())
    if "," in spec:
        return None
    match = _RANGE.fullmatch(spec)
    if match is None:
        raise UnsatisfiableRange(
            f"Range: expected 'bytes=first-last' or 'bytes=-n', got {header!r}"
        )
    first, last = match.groups()
    if not first:  # a suffix: the last n bytes
        if not last or int(last) == 0 or size == 0:
            raise UnsatisfiableRange("Range: the suffix length must be a positive number")
        return max(size - int(last), 0), size - 1
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if last and int(last) < start:
        raise UnsatisfiableRange("Range: the last byte comes before the first")
    if start >= size:
        raise UnsatisfiableRange(f"Range: the file has {size} bytes; byte {start} is past its end")
    return start, end


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def not_modified(headers: Mapping[str, str], etag: str, last_modified: datetime) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present; else If-Modified-Since."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or etag in tags
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an invalid date is ignored, as the RFC asks
    if since.tzinfo is None:
        return False
    # HTTP dates have whole seconds.
    return last_modified.replace(microsecond=0) <= since


def _range_applies(headers: Mapping[str, str], etag: str, last_modified: datetime) -> bool:
    """If-Range: the range holds only while the client's validator is still current."""
    if_range = headers.get("if-range")
    return if_range is None or if_range in (etag, http_date(last_modified))


async def _chunks(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as file:
        await file.seek(start)
        while length > 0:
            chunk = await file.read(min(CHUNK_BYTES, length))
            if not chunk:
                raise RuntimeError(f"{path} is shorter than when it was opened")
            length -= len(chunk)
            yield chunk


def file_response(
    request_headers: Mapping[str, str],
    path: Path,
    *,
    media_type: str,
    etag: str,
    last_modified: datetime,
    cache_control: str,
) -> Response:
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(last_modified),
        "Cache-Control": cache_control,
        "Accept-Ranges": "bytes",
    }
    if not_modified(request_headers, etag, last_modified):
        return Response(status_code=304, headers=headers)
    size = os.stat(path).st_size
    byte_range = None
    range_header = request_headers.get("range")
    if range_header is not None and _range_applies(request_headers, etag, last_modified):
        try:
            byte_range = parse_range(range_header, size)
        except UnsatisfiableRange as exc:
            raise Problem(
                416,
                "Range not satisfiable",
                str(exc),
                headers={"Content-Range": f"bytes */{size}"},
            ) from None
    if byte_range is None:
        start, length, status = 0, size, 200
    else:
        start, length, status = byte_range[0], byte_range[1] - byte_range[0] + 1, 206
        headers["Content-Range"] = f"bytes {byte_range[0]}-{byte_range[1]}/{size}"
    headers["Content-Length"] = str(length)
    return StreamingResponse(
        _chunks(path, start, length), status_code=status, headers=headers, media_type=media_type
    )
