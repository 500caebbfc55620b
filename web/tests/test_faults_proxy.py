"""Production-sized nginx in front of two real Hypercorn processes: GET / counts, so nginx must
never send it twice (`upstream_status=502, 200` in its log); each 200 is stored once, a failure at
most once. It serves 1,000 clients at once and refuses HTTP/0.9."""

from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

from counter.config import Settings
from harness.provision import stored_count
from harness.servers import Nginx, Server, run_hypercorn, run_nginx
from http_client import Load, assert_stored_once, fetch, page_count

pytestmark = pytest.mark.processes

CONNECTIONS = 64
CLIENTS = 1000


@contextmanager
def two_apps_behind_nginx(settings: Settings) -> Iterator[tuple[Nginx, Server]]:
    """nginx sized as in production, two Hypercorn processes (one per core) on one database."""
    with (
        run_hypercorn(settings) as first,
        run_hypercorn(settings) as second,
        run_nginx([first.netloc, second.netloc], True) as proxy,
    ):
        yield proxy, first


@pytest.fixture(scope="module")
def proxy(settings: Settings) -> Iterator[Nginx]:
    """One such stack for the tests that leave its processes running."""
    with two_apps_behind_nginx(settings) as (nginx, _):
        yield nginx


def assert_each_count_sent_once(load: Load, before: int, stored: int, proxy: Nginx) -> None:
    """The module's invariant: no request went to a second upstream, each page's number was
    stored once, and the count grew by no more than the requests sent."""
    pages = [page_count(reply.text) for reply in load.replies if reply.status == 200]
    failed = len(load.replies) - len(pages) + load.lost
    # An upstream_status with a comma: nginx tried more than one upstream for one request.
    retried = [line for line in proxy.access_log() if re.search(r"upstream_status=\d+, ", line)]
    print(f"{load.statuses()} {dict(load.errors)}, stored +{stored}; retried: {len(retried)}")
    assert retried == [], retried[:3]
    assert_stored_once(pages, before, stored, failed)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_an_upstream_dying_mid_load_gets_no_count_sent_twice(
    settings: Settings, how: signal.Signals
) -> None:
    with two_apps_behind_nginx(settings) as (proxy, first):
        before = stored_count(settings)
        load = Load(proxy.url, CONNECTIONS, budget=2000)
        load.wait_for(600)
        first.process.send_signal(how)
        first.process.wait(timeout=15)
        load.finish()
        assert load.statuses()[200] > 1000, "the other process kept serving"
        assert_each_count_sent_once(load, before, stored_count(settings) - before, proxy)


def test_an_idle_gap_then_load_gets_no_retry_and_no_502(settings: Settings, proxy: Nginx) -> None:
    before = stored_count(settings)
    for gap in (6, 0):  # fill nginx's cache of kept-alive upstream connections, then idle
        load = Load(proxy.url, CONNECTIONS, budget=1000)
        load.finish()
        assert load.statuses() == {200: 1000}, (load.statuses(), load.errors)
        time.sleep(gap)
    after_first = before + 1000  # its 1000 200s
    assert_each_count_sent_once(load, after_first, stored_count(settings) - after_first, proxy)


def test_a_thousand_clients_at_once_are_all_answered(settings: Settings, proxy: Nginx) -> None:
    before = stored_count(settings)
    # Past nginx's proxy_read_timeout (30 s): nginx answers every request, if only with a 504
    # when the app is slow (2 shared cores), but drops none.
    load = Load(proxy.url, CLIENTS, budget=2 * CLIENTS, timeout=45)
    load.finish(within=120)
    assert_each_count_sent_once(load, before, stored_count(settings) - before, proxy)
    assert "worker_connections are not enough" not in proxy.log(), proxy.log()[-500:]
    assert load.errors == {}, "every request has an answer"
    assert load.statuses()[200] >= CLIENTS


def test_http_09_is_refused_and_counts_nothing(settings: Settings, proxy: Nginx) -> None:
    before = stored_count(settings)
    url = urlsplit(proxy.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(b"GET /\r\n")  # no HTTP version: no headers either way
        reply = b"".join(iter(lambda: sock.recv(65536), b""))
    print(f"HTTP/0.9 GET /: {reply[:60]!r}")
    assert b"Counter" not in reply, reply
    assert stored_count(settings) == before
    # The same request with a version counts: the check above can fail.
    assert fetch(proxy.url, "/").status == 200
    assert stored_count(settings) == before + 1
