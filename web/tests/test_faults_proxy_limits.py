"""nginx's own limits, on the real nginx and Hypercorn: many clients at once, and HTTP/0.9.

nginx sized like production (harness `production=True`) must serve ~1,000 kept-alive clients at
once without running out of worker connections (each proxied request holds two), and a request
without an HTTP version, which has no headers and gets none back, must not count a visit.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from counter.config import Settings
from harness.provision import stored_count
from harness.servers import TEMPLATES, Nginx, run_hypercorn, run_nginx
from http_client import fetch
from keepalive_load import Load

pytestmark = pytest.mark.processes

CLIENTS = 1000
NOT_ENOUGH = "worker_connections are not enough"
# The main config production mounts over the image's (compose, swarm, k8s).
MAIN_CONFIG = TEMPLATES.parent / "nginx.conf"
WORKER_CONNECTIONS = re.compile(r"worker_connections\s+(\d+);")


@pytest.fixture
def proxy(settings: Settings) -> Iterator[Nginx]:
    """nginx from the project's template, sized as in production, in front of two Hypercorn
    processes (one per core, as production runs them)."""
    with run_hypercorn(settings) as first, run_hypercorn(settings) as second:
        upstreams = [urlsplit(app.url).netloc for app in (first, second)]
        with run_nginx(upstreams, production=True) as server:
            yield server


def test_a_thousand_clients_at_once_are_all_answered(settings: Settings, proxy: Nginx) -> None:
    before = stored_count(settings)
    # Past nginx's proxy_read_timeout (30 s): nginx answers every request, if only with a 504
    # when the app is slow (2 shared cores), but drops none.
    load = Load(proxy.url, CLIENTS, budget=2 * CLIENTS, timeout=45)
    load.finish(within=120)
    stored = stored_count(settings) - before
    print(f"{CLIENTS} clients: {dict(load.statuses)} {dict(load.errors)}, stored +{stored}")
    assert NOT_ENOUGH not in proxy.log(), proxy.log()[-500:]
    assert load.errors == {}, "every request has an answer"
    assert load.statuses[200] >= CLIENTS, load.statuses
    assert load.statuses[200] <= stored <= 2 * CLIENTS


def http_09(proxy: Nginx, path: str) -> bytes:
    """`GET path` with no HTTP version on a raw socket: everything nginx sends back."""
    url = urlsplit(proxy.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(f"GET {path}\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_http_09_is_refused_and_counts_nothing(settings: Settings, proxy: Nginx) -> None:
    before = stored_count(settings)
    reply = http_09(proxy, "/")
    after = stored_count(settings)
    print(f"HTTP/0.9 GET /: {reply[:60]!r}, stored +{after - before}")
    assert b"Counter" not in reply, reply
    assert after == before
    # The same request with a version counts: the check above can fail.
    assert fetch(proxy.url, "/").status == 200
    assert stored_count(settings) == before + 1
