"""Bad input, error pages and forwarded headers: the real nginx in front of the real Hypercorn."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from counter.config import Settings
from harness.mariadb import MariaDB
from harness.poll import poll_until
from harness.servers import Nginx, Server, run_hypercorn, run_nginx
from harness.tools import free_port
from http_client import Reply, fetch
from proxied_app import SECRET_DETAIL

pytestmark = pytest.mark.processes

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
# What must never reach a client, lower-cased: tracebacks, the database driver's words, and the
# probe's own secret...
LEAKS = ("traceback", 'file "', "sqlalchemy", "operationalerror", "can't connect", "errno",
         SECRET_DETAIL.lower())  # fmt: skip
# ...or a server or library with its version ("nginx/1.22.1", "Hypercorn 0.18", "Python/3.11").
VERSION = re.compile(
    r"(nginx|hypercorn|quart|werkzeug|python|uvloop|mysql|mariadb)[/ ]v?\d+\.\d+", re.IGNORECASE
)
# Loopback has all of 127.0.0.0/8: a client bound to this address is told apart from nginx.
CLIENT_ADDRESS = "127.0.0.2"
COUNTER = re.compile(r"Counter: (\d+)")


def assert_safe(reply: Reply) -> None:
    """Security headers present, no server version, nothing internal in the body."""
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers[name] == value, name
    csp = reply.headers["Content-Security-Policy"] or ""
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    # server_tokens off, and Hypercorn's own header switched off (include_server_header).
    assert reply.headers.get_all("Server") == ["nginx"]
    body = reply.text.lower()
    for leak in LEAKS:
        assert leak not in body, (leak, reply.text)
    assert not VERSION.search(reply.text), reply.text


def log_line(proxy: Nginx, marker: str) -> str:
    """The access log line that mentions `marker` (nginx writes it after the response)."""
    lines = poll_until(
        lambda: [line for line in proxy.access_log() if marker in line], 5, f"a log line {marker}"
    )
    return lines[-1]


@pytest.fixture(scope="module")
def app(settings: Settings) -> Iterator[Server]:
    """The real Hypercorn and config on tests/proxied_app.py (the app plus probe routes)."""
    with run_hypercorn(settings, app="tests.proxied_app:app") as server:
        yield server


@pytest.fixture(scope="module")
def proxy(app: Server) -> Iterator[Nginx]:
    """nginx on the project's template in front of `app`."""
    with run_nginx([urlsplit(app.url).netloc]) as server:
        yield server


def client_seen(server: Server, **kwargs: object) -> dict[str, str]:
    """What the app believes about the client of this request."""
    reply = fetch(server.url, "/_probe/client", **kwargs)  # type: ignore[arg-type]
    assert reply.status == 200, reply.text
    seen: dict[str, str] = json.loads(reply.body)
    return seen


# --- Bad input: nginx answers, the app never sees the request ---------------------------------


@pytest.mark.parametrize(
    ("status", "method", "path", "headers", "body"),
    [
        # client_max_body_size, announced by Content-Length...
        (413, "POST", "/api/counter?m=len", {}, b"x" * 100_000),
        # ...or discovered while reading a chunked body.
        (413, "POST", "/api/counter?m=chunked", {}, [b"x" * 50_000] * 2),
        # large_client_header_buffers: a request line over 8k, then one header line over 8k.
        (414, "GET", "/?m=uri&pad=" + "a" * 9000, {}, None),
        (400, "GET", "/?m=header", {"X-Big": "a" * 9000}, None),
    ],
    ids=["body-length", "body-chunked", "uri", "header"],
)
def test_bad_input_is_refused_by_nginx(
    proxy: Nginx,
    status: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | list[bytes] | None,
) -> None:
    reply = fetch(proxy.url, path, method, headers=headers, body=body)
    assert reply.status == status
    assert_safe(reply)
    # nginx's own page, and no upstream was asked: $upstream_addr is "-".
    assert "<center>nginx</center>" in reply.text
    # The 414's request line is too long to be logged; it is the only 414 here.
    marker = "m=" + path.split("?m=")[1].split("&")[0] if status != 414 else '" 414 '
    line = log_line(proxy, marker)
    assert f" {status} " in line
    assert "upstream=- " in line


# --- Error pages: no traceback, no versions, security headers on every one ---------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/api/counter", 200),
        ("GET", "/no-such-page", 404),
        ("GET", "/api/no-such-thing", 404),
        ("PUT", "/", 405),
        ("DELETE", "/api/counter", 405),
        ("GET", "/_probe/boom", 500),
    ],
)
def test_app_pages_through_nginx_leak_nothing(
    proxy: Nginx, method: str, path: str, status: int
) -> None:
    reply = fetch(proxy.url, path, method)
    assert reply.status == status
    assert_safe(reply)


def test_hypercorn_sends_no_server_header(app: Server) -> None:
    # Straight to Hypercorn: include_server_header = False in hypercorn_conf.py.
    for path in ("/healthz", "/no-such-page", "/_probe/boom"):
        reply = fetch(app.url, path)
        assert reply.headers.get_all("Server") is None, path
        assert SECRET_DETAIL not in reply.text


def test_each_page_view_through_nginx_counts_once(proxy: Nginx) -> None:
    pages = [fetch(proxy.url, "/").text for _ in range(2)]
    first, second = (int(match[1]) for page in pages if (match := COUNTER.search(page)))
    assert second == first + 1


def test_database_down_is_a_clean_503(private_server: MariaDB, private_settings: Settings) -> None:
    with run_hypercorn(private_settings) as app, run_nginx([urlsplit(app.url).netloc]) as proxy:
        assert fetch(proxy.url, "/api/counter").status == 200
        private_server.stop()
        for path in ("/", "/api/counter"):
            reply = fetch(proxy.url, path)
            assert reply.status == 503, reply.text
            assert reply.headers["Retry-After"]
            assert_safe(reply)
            assert str(private_server.port) not in reply.text


def test_app_down_is_a_clean_502() -> None:
    # Nothing listens upstream: nginx's own 502 page.
    with run_nginx([f"127.0.0.1:{free_port()}"]) as proxy:
        reply = fetch(proxy.url, "/")
    assert reply.status == 502
    assert_safe(reply)


# --- Forwarded headers: trusted from the proxy only, one hop ----------------------------------


def test_client_forged_forwarded_for_does_not_reach_the_app(proxy: Nginx) -> None:
    # nginx appends the address it sees ($proxy_add_x_forwarded_for): "6.6.6.6, 127.0.0.2". The
    # app trusts one hop (ProxyFixMiddleware trusted_hops=1), so it takes the last entry: the
    # real client, which is neither the forged value nor nginx's own address (127.0.0.1).
    seen = client_seen(proxy, headers={"X-Forwarded-For": "6.6.6.6"}, source=CLIENT_ADDRESS)
    assert seen["remote_addr"] == CLIENT_ADDRESS


def test_client_forged_proto_and_host_are_replaced_by_nginx(proxy: Nginx) -> None:
    forged = {
        "Host": "counter.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
    }
    seen = client_seen(proxy, headers=forged, source=CLIENT_ADDRESS)
    # nginx sets X-Forwarded-Proto to its own $scheme and X-Forwarded-Host to $host.
    assert seen["scheme"] == "http"
    assert seen["host"] == "counter.example"


def test_direct_requests_are_trusted_as_if_from_the_proxy(app: Server) -> None:
    # One trusted hop means Hypercorn believes whoever connects to it. That is safe only because
    # nothing but nginx can: compose never publishes the web service's port (test_compose.py)
    # and on the host Hypercorn binds 127.0.0.1. This test pins the trust boundary down.
    assert client_seen(app, source=CLIENT_ADDRESS)["remote_addr"] == CLIENT_ADDRESS
    forged = client_seen(app, headers={"X-Forwarded-For": "6.6.6.6"}, source=CLIENT_ADDRESS)
    assert forged["remote_addr"] == "6.6.6.6"
