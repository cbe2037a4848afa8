"""Every form a secret takes in a log line is scrubbed; ordinary text is left alone."""

from __future__ import annotations

import json
import logging

import pytest
from lookout_shared.logs import JsonFormatter, scrub

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXNlY3JldA"
API_KEY = "lk_Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"


@pytest.mark.parametrize(
    ("text", "secrets"),
    [
        # Authorization headers, as a header line, a dict repr and an ASGI header tuple.
        ("Authorization: Bearer abc.def.ghi", ["abc.def.ghi"]),
        ("{'authorization': 'Bearer s3cr3t-tok'}", ["s3cr3t-tok"]),
        ("(b'authorization', b'Bearer s3cr3t-tok')", ["s3cr3t-tok"]),
        ("Authorization: Basic dXNlcjpodW50ZXIy", ["dXNlcjpodW50ZXIy"]),
        ("authorization=opaque-value-123", ["opaque-value-123"]),
        # Query strings.
        ('"GET /ws?token=abc.def HTTP/1.1" 101', ["abc.def"]),
        ("/x?a=1&access_token=zzz-111&b=2", ["zzz-111"]),
        ("/x?api_key=kkk-222", ["kkk-222"]),
        # API keys and access tokens wherever they appear.
        (f"key {API_KEY} refused", [API_KEY[3:]]),
        (f'< TEXT \'{{"op":"auth","token":"{JWT}"}}\'', [JWT, "c2lnbmF0dXJl"]),
        (f"handing {JWT} over", [JWT]),
        # Passwords in JSON, reprs and form bodies, spaces and separators included.
        ('{"password": "correct horse, battery"}', ["correct", "horse", "battery"]),
        ("{'new_password': 'it\\'s a secret'}", ["it\\'s", "a secret"]),
        ("username=a%40b.io&password=p%26ss+w,rd&grant_type=password", ["p%26ss", "w,rd", ",rd"]),
        ('{"secret": "lk_short", "jwt_secret": "xyz"}', ["lk_short", "xyz"]),
        # URL credentials, with an @ in the password, and a token as the user part.
        ("opening rtsp://admin:hunter2@127.0.0.1:8554/live", ["hunter2", "admin"]),
        ("rtsp://admin:p@ss@127.0.0.1/x failed", ["p@ss", "ss@"]),
        ("http://t0ken-only@127.0.0.1/cam.m3u8", ["t0ken-only"]),
        ("'url': 'rtmp://u:pw%2F1@127.0.0.1/app'", ["pw%2F1"]),
    ],
)
def test_scrub_removes_secrets(text: str, secrets: list[str]) -> None:
    scrubbed = scrub(text)
    for secret in secrets:
        assert secret not in scrubbed, scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "GET /api/v1/streams?limit=10&sort=name HTTP/1.1",
        "job 9b1c captured snapshot 77aa in 0.4s",
        "created api key lk_AbCdEfG for tenant 12",  # the shown prefix is not the key
        "rtsp://127.0.0.1:8554/live opened",
    ],
)
def test_scrub_leaves_ordinary_text(text: str) -> None:
    assert scrub(text) == text


def test_every_field_of_a_line_is_scrubbed_and_the_line_stays_json() -> None:
    record = logging.makeLogRecord(
        {
            "msg": "login %s",
            "args": ('{"password": "pa\\"ss word"}',),
            "levelname": "WARNING",
            "url": "rtsp://u:hunter2@127.0.0.1/x",
            "headers": {"authorization": f"Bearer {JWT}"},
        }
    )
    line = JsonFormatter("api").format(record)
    entry = json.loads(line)
    assert entry["level"] == "warning"
    for secret in ("hunter2", "ss word", JWT):
        assert secret not in line, line


def test_scrub_masks_the_same_url_parameters_as_the_stream_url_mask() -> None:
    assert scrub("key=k1&channel=1") == "key=***&channel=1"  # a span's url.query
    line = "ffmpeg rtsp://cam/live?channel=1&PWD=x1&auth=a2&X-Amz-Signature=s3 failed"
    assert (
        scrub(line)
        == "ffmpeg rtsp://cam/live?channel=1&PWD=***&auth=***&X-Amz-Signature=*** failed"
    )
