"""nginx in front of real Hypercorn processes: GET / counts, so nginx must never send it twice.

Every response is counted (tests/keepalive_load.py) and compared with the stored count: a 200 is
stored exactly once, a 502 at most once (the app may have committed before its process died), so
the stored increase lies between the 200s and the 200s plus the failures. More than that means
nginx sent a counting request twice (its access log then shows `upstream_status=502, 200`).
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from counter.config import Settings
from harness.provision import stored_count
from harness.servers import Nginx, Server, run_hypercorn, run_nginx
from keepalive_load import Load

pytestmark = pytest.mark.processes

CONNECTIONS = 64
# An upstream_status with a comma: nginx tried more than one upstream connection for one request.
RETRIED = re.compile(r"upstream_status=\d{3}, ")


@pytest.fixture
def two_apps(settings: Settings) -> Iterator[tuple[Server, Server]]:
    """Two Hypercorn processes as production runs them, on the same database."""
    with run_hypercorn(settings) as first, run_hypercorn(settings) as second:
        yield first, second


def upstreams(*apps: Server) -> list[str]:
    """The apps' host:port, for nginx's upstream block."""
    return [urlsplit(app.url).netloc for app in apps]


def retried(proxy: Nginx) -> list[str]:
    """Access log lines of requests that nginx sent to more than one upstream connection."""
    return [line for line in proxy.access_log() if RETRIED.search(line)]


def assert_each_count_sent_once(load: Load, stored: int, proxy: Nginx) -> None:
    """The module's invariant, with the figures in the message."""
    ok = load.statuses[200]
    failed = sum(load.statuses.values()) - ok + sum(load.errors.values())
    figures = f"{dict(load.statuses)} {dict(load.errors)}, stored +{stored}"
    print(f"{figures}; retried: {len(retried(proxy))}")
    assert retried(proxy) == [], f"{figures}; {retried(proxy)[:3]}"
    assert ok <= stored <= ok + failed, figures


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_an_upstream_dying_mid_load_gets_no_count_sent_twice(
    settings: Settings, two_apps: tuple[Server, Server], how: signal.Signals
) -> None:
    with run_nginx(upstreams(*two_apps), production=True) as proxy:
        before = stored_count(settings)
        load = Load(proxy.url, CONNECTIONS, budget=6000)
        load.wait_for(1500)
        two_apps[0].process.send_signal(how)
        two_apps[0].process.wait(timeout=15)
        load.finish()
        assert load.statuses[200] > 3000, "the other process kept serving"
        assert_each_count_sent_once(load, stored_count(settings) - before, proxy)


def test_an_idle_gap_then_load_gets_no_retry_and_no_502(
    settings: Settings, two_apps: tuple[Server, Server]
) -> None:
    with run_nginx(upstreams(*two_apps), production=True) as proxy:
        before = stored_count(settings)
        for _ in range(2):  # fill nginx's cache of kept-alive upstream connections, then idle
            load = Load(proxy.url, CONNECTIONS, budget=1000)
            load.finish()
            assert load.statuses == {200: 1000}, (load.statuses, load.errors)
            time.sleep(6)
        assert_each_count_sent_once(load, stored_count(settings) - before - 1000, proxy)
