"""Bad input, error pages and forwarded headers: the real nginx in front of the real Hypercorn."""

from __future__ import annotations

import re
from collections.abc import Iterator

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
# Never to reach a client (lower-cased): tracebacks, the driver's words, the probe's secret...
LEAKS = ("traceback", 'file "', "sqlalchemy", "operationalerror", "can't connect", "errno",
         SECRET_DETAIL.lower())  # fmt: skip
# ...or a server or library with its version ("nginx/1.22.1", "Hypercorn 0.18", "Python/3.11").
VERSION = re.compile(
    r"(nginx|hypercorn|quart|werkzeug|python|uvloop|mysql|mariadb)[/ ]v?\d+\.\d+", re.IGNORECASE
)
CLIENT = "127.0.0.2"  # loopback has all of 127.0.0.0/8: a client told apart from nginx


def assert_safe(reply: Reply) -> None:
    """Security headers present, no server version, nothing internal in the body."""
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers[name] == value, name
    csp = reply.headers["Content-Security-Policy"] or ""
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert reply.headers.get_all("Server") == ["nginx"]  # server_tokens off
    assert not [leak for leak in LEAKS if leak in reply.text.lower()], reply.text
    assert not VERSION.search(reply.text), reply.text


@pytest.fixture(scope="module")
def app(settings: Settings) -> Iterator[Server]:
    """The real Hypercorn and config on manage.py's app plus probe routes."""
    with run_hypercorn(settings, app="tests.proxied_app:probed()") as server:
        yield server


@pytest.fixture(scope="module")
def proxy(app: Server) -> Iterator[Nginx]:
    """nginx on the project's template in front of `app`."""
    with run_nginx([app.netloc]) as server:
        yield server


def client_seen(server: Server, **kwargs: object) -> dict[str, object]:
    """What the app believes about the client of this request."""
    reply = fetch(server.url, "/_probe/client", **kwargs)  # type: ignore[arg-type]
    assert reply.status == 200, reply.text
    return reply.json()


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
    assert "<center>nginx</center>" in reply.text  # nginx's own page...
    request_id = reply.headers["X-Request-ID"]  # ...with an ID, logged: no upstream was asked
    assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
    line = poll_until(lambda: [x for x in proxy.access_log() if request_id in x], 5, "its line")
    assert f" {status} " in line[0]
    assert "upstream=- " in line[0]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/healthz", 200),
        ("GET", "/api/counter", 200),
        ("GET", "/no-such-page", 404),
        ("GET", "/api/no-such-thing", 404),
        ("PUT", "/", 405),
        ("DELETE", "/api/counter", 405),
        ("GET", "/_probe/boom", 500),
    ],
)
def test_pages_leak_nothing(app: Server, proxy: Nginx, method: str, path: str, status: int) -> None:
    reply = fetch(proxy.url, path, method)
    assert reply.status == status
    assert_safe(reply)
    direct = fetch(app.url, path, method)  # include_server_header = False in hypercorn_conf.py
    assert (direct.status, direct.headers.get_all("Server")) == (status, None)
    assert SECRET_DETAIL not in direct.text


def test_database_down_is_a_clean_503(private_server: MariaDB, private_settings: Settings) -> None:
    with run_hypercorn(private_settings) as app, run_nginx([app.netloc]) as proxy:
        assert fetch(proxy.url, "/api/counter").status == 200
        private_server.stop()
        for path in ("/", "/api/counter"):
            reply = fetch(proxy.url, path)
            assert reply.status == 503, reply.text
            assert reply.headers["Retry-After"]
            assert_safe(reply)
            assert str(private_server.port) not in reply.text


def test_app_down_is_a_clean_502() -> None:
    with run_nginx([f"127.0.0.1:{free_port()}"]) as proxy:  # nothing listens upstream
        reply = fetch(proxy.url, "/")
    assert reply.status == 502
    assert_safe(reply)


def test_nginx_replaces_forged_forwarded_headers(proxy: Nginx) -> None:
    # nginx sends "6.6.6.6, 127.0.0.2"; the app trusts one hop (ProxyFixMiddleware), so takes the
    # last: the real client. nginx sets X-Forwarded-Proto to its $scheme, X-Forwarded-Host to $host.
    forged = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https",
              "X-Forwarded-Host": "evil.example", "Host": "counter.example"}  # fmt: skip
    seen = client_seen(proxy, headers=forged, source=CLIENT)
    assert seen == {"remote_addr": CLIENT, "scheme": "http", "host": "counter.example"}


def test_direct_requests_are_trusted_as_if_from_the_proxy(app: Server) -> None:
    # Safe only because nothing but nginx can connect: compose never publishes the web service's
    # port (test_compose.py) and on the host Hypercorn binds 127.0.0.1. This pins that boundary.
    assert client_seen(app, source=CLIENT)["remote_addr"] == CLIENT
    forged = client_seen(app, headers={"X-Forwarded-For": "6.6.6.6"}, source=CLIENT)
    assert forged["remote_addr"] == "6.6.6.6"
