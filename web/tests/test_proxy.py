"""Hypercorn behind the project's nginx config, both as real processes on free loopback ports."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from counter.config import Settings
from nginx_runner import run_nginx
from servers import RunningServer, run_hypercorn

pytestmark = pytest.mark.processes

COUNTER = re.compile(r"Counter: (\d+)")


@pytest.fixture(scope="module")
def nginx(settings: Settings) -> Iterator[RunningServer]:
    """nginx on a free port in front of one Hypercorn worker on the test database."""
    with run_hypercorn(settings) as app, run_nginx(urlsplit(app.url).netloc) as proxy:
        yield proxy


def request(
    server: RunningServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[http.client.HTTPResponse, str]:
    """One request on a fresh connection; the response and its decoded body."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response, response.read().decode(errors="replace")
    finally:
        conn.close()


def count_on_page(server: RunningServer) -> int:
    """GET / through nginx (which increments) and read the number off the page."""
    response, page = request(server, "GET", "/")
    assert response.status == 200, page
    match = COUNTER.search(page)
    assert match, page
    return int(match[1])


def test_each_page_view_through_nginx_counts_once(nginx: RunningServer) -> None:
    first = count_on_page(nginx)
    assert count_on_page(nginx) == first + 1


@pytest.mark.parametrize("path", ["/", "/api/counter", "/no-such-page"])
def test_security_headers_and_no_version(nginx: RunningServer, path: str) -> None:
    response, _ = request(nginx, "GET", path)
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("X-Frame-Options") == "DENY"
    assert response.getheader("Referrer-Policy")
    csp = response.getheader("Content-Security-Policy") or ""
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    # server_tokens off: "nginx", never "nginx/1.22.1".
    assert response.getheader("Server") == "nginx"


def test_oversized_body_is_refused_by_nginx(nginx: RunningServer) -> None:
    before = count_on_page(nginx)
    response, page = request(
        nginx,
        "POST",
        "/api/counter",
        body=b"{" + b" " * 100_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 413
    # nginx's own error page (no version on it), and the app never saw the request.
    assert "nginx/" not in page
    assert count_on_page(nginx) == before + 1


def test_oversized_header_is_refused_by_nginx(nginx: RunningServer) -> None:
    response, _ = request(nginx, "GET", "/healthz", headers={"X-Big": "a" * 20_000})
    assert response.status == 400
