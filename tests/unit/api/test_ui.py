"""The operator page's files and headers, without a server: every file the page loads is
served, no file runs inline code or stores the token, and the CSP and config follow the
notifier's public URL."""

from __future__ import annotations

import re

import pytest
from lookout_api.entrypoints import ui
from lookout_api.settings import ApiSettings


def text(name: str) -> str:
    return ui.ASSETS[name].body.decode()


def test_every_file_the_page_loads_is_served() -> None:
    wanted = set(re.findall(r'(?:src|href)="/ui/([^"]+)"', text("index.html")))
    for name in [n for n in ui.ASSETS if n.endswith(".js")]:
        wanted |= set(re.findall(r'from "\./([^"]+)"', text(name)))
    assert wanted and wanted <= set(ui.ASSETS)


def test_no_inline_code_no_html_parsing_no_stored_token() -> None:
    html = text("index.html")
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "<style" not in html
    assert not re.search(r"\son\w+=|\sstyle=", html)
    for name in [n for n in ui.ASSETS if n.endswith(".js")]:
        code = text(name)
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "localStorage",
                       "sessionStorage", "document.cookie", "token="):  # fmt: skip
            assert banned not in code, (name, banned)


def test_csp_allows_only_this_origin_and_the_notifier() -> None:
    settings = ApiSettings(public_notifier_url="https://live.example.com:8443/notify")
    csp = ui.content_security_policy(settings)
    assert "default-src 'self'" in csp and "script-src 'self';" in csp
    assert "unsafe" not in csp
    assert "connect-src 'self' https://live.example.com:8443 wss://live.example.com:8443" in csp
    assert "img-src 'self' blob:" in csp
    config = ui.page_config(settings).body
    assert config == b'{"notifier_ws_url": "wss://live.example.com:8443/notify/ws"}'


def test_notifier_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="LOOKOUT_PUBLIC_NOTIFIER_URL"):
        ApiSettings(public_notifier_url="javascript:alert(1)")


@pytest.mark.parametrize(
    ("header", "matches"),
    [(None, False), ('"other"', False), ('"other", "tag"', True), ('W/"tag"', True), ("*", True)],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert ui._none_match(header, '"tag"') is matches
