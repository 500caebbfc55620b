"""Bad input, error pages and forwarded headers: the real nginx in front of the real Hypercorn."""

from collections.abc import Iterator

import pytest

from counter.config import Settings
from harness.poll import poll_until
from harness.servers import Nginx, run_hypercorn, run_nginx
from http_client import Reply, assert_nothing_internal, fetch
from proxied_app import SECRET_DETAIL

pytestmark = pytest.mark.processes

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def assert_safe(reply: Reply) -> None:
    """Security headers present, no server version, nothing internal in the body."""
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers[name] == value, name
    csp = reply.headers["Content-Security-Policy"] or ""
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert reply.headers.get_all("Server") == ["nginx"]  # server_tokens off
    assert_nothing_internal(reply.text)


@pytest.fixture(scope="module")
def proxy(settings: Settings) -> Iterator[Nginx]:
    """nginx on the project's template before the real Hypercorn: manage.py's app, probe routes."""
    probed = "tests.proxied_app:probed()"
    with run_hypercorn(settings, app=probed) as app, run_nginx([app.netloc]) as server:
        yield server


@pytest.mark.parametrize(
    ("status", "method", "path", "headers", "body"),
    [
        (413, "POST", "/api/counter", {}, b"x" * 100_000),  # client_max_body_size, announced...
        (413, "POST", "/api/counter", {}, [b"x" * 50_000] * 2),  # ...or met in a chunked body
        (414, "GET", "/?pad=" + "a" * 9000, {}, None),  # large_client_header_buffers: the URI...
        (400, "GET", "/", {"X-Big": "a" * 9000}, None),  # ...or one header line over 8k
    ],
    ids=["body-length", "body-chunked", "uri", "header"],
)
def test_bad_input_is_refused_by_nginx(
    proxy: Nginx, status: int, method: str, path: str, headers: dict[str, str], body: object
) -> None:
    reply = fetch(proxy.url, path, method, headers=headers, body=body)  # type: ignore[arg-type]
    assert reply.status == status
    assert_safe(reply)
    request_id = reply.headers["X-Request-ID"]  # nginx's own page, logged: no upstream was asked
    line = poll_until(lambda: [x for x in proxy.access_log() if request_id in x], 5, "its line")
    assert f" {status} " in line[0]
    assert "upstream=- " in line[0]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/no-such-page", 404),
        ("DELETE", "/api/counter", 405),
        ("GET", "/_probe/boom", 500),
    ],
)
def test_pages_leak_nothing(proxy: Nginx, method: str, path: str, status: int) -> None:
    reply = fetch(proxy.url, path, method)
    assert reply.status == status
    assert_safe(reply)
    assert SECRET_DETAIL not in reply.text


def test_nginx_replaces_forged_forwarded_headers(proxy: Nginx) -> None:
    # nginx sends "6.6.6.6, 127.0.0.2"; the app trusts one hop (ProxyFixMiddleware), so takes the
    # real client. nginx sets X-Forwarded-Proto to its $scheme, X-Forwarded-Host to $host.
    forged = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}
    forged |= {"X-Forwarded-Host": "evil.example", "Host": "counter.example"}
    seen = fetch(proxy.url, "/_probe/client", headers=forged, source="127.0.0.2").json()
    assert seen == {"remote_addr": "127.0.0.2", "scheme": "http", "host": "counter.example"}
