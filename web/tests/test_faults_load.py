"""Bursts of increments through real Hypercorn while it shuts down, or while the database restarts.

The invariant: every increment answered 200 is in the stored count exactly once. A 503 promises
nothing either way: if the connection died after the server committed the UPDATE but before its
OK packet arrived, that increment stays although its caller heard 503. So the stored count is at
least the number of 200s and at most that plus the number of 503s, and the values handed out in
200s are distinct and never above the stored count.
"""

from __future__ import annotations

import signal
import time

import pytest

from counter.config import Settings
from fault_client import Burst, wait_for_status
from mariadb_server import MariaDB
from servers import run_hypercorn

pytestmark = pytest.mark.processes

GRACEFUL_TIMEOUT = 5
THREADS = 16


def wait_for_answers(burst: Burst, at_least: int, within: float = 10.0) -> None:
    """Let the burst get going."""
    deadline = time.monotonic() + within
    while burst.answered() < at_least:
        assert time.monotonic() < deadline, "the burst did not get going"
        time.sleep(0.01)


def assert_each_200_counted_once(burst: Burst, stored: int) -> None:
    """The invariant above, and no reply other than 200 or 503."""
    statuses = burst.statuses()
    assert set(statuses) <= {200, 503}, statuses
    counted = burst.counted()
    assert len(set(counted)) == len(counted), "a value was handed out twice"
    assert max(counted) <= stored
    assert len(counted) <= stored <= len(counted) + statuses.get(503, 0)


def test_sigterm_mid_burst_finishes_in_flight_requests(
    private_db: tuple[MariaDB, Settings],
) -> None:
    server, settings = private_db
    extra = {"WEB_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT)}
    with run_hypercorn(settings, extra_env=extra) as web:
        aborted = server.status("Aborted_clients")
        burst = Burst(web.url, THREADS)
        try:
            wait_for_answers(burst, 200)
            web.process.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            code = web.process.wait(timeout=GRACEFUL_TIMEOUT + 5)
            took = time.monotonic() - sent
        finally:
            burst.stop()
        output = web.log()
    stored = server.stored_count(settings)
    assert code == 0, output
    assert took < GRACEFUL_TIMEOUT + 1
    # Requests the app was serving finish with 200. The exception is Hypercorn's own race (0.18,
    # asyncio/run.py): a connection accepted just before the listener closes starts its task only
    # after the set of tasks to wait for was taken, so the loop's end cancels it and Hypercorn
    # answers 500, after or before the batch it joined was committed. Seen ~1 run in 8.
    statuses = burst.statuses()
    cut = statuses.get(500, 0)
    assert set(statuses) <= {200, 500}, statuses
    counted = burst.counted()
    assert len(set(counted)) == len(counted), "a value was handed out twice"
    assert max(counted) <= stored
    assert len(counted) <= stored <= len(counted) + cut
    # Both engines were disposed: every connection said goodbye instead of being cut (but for a
    # connection opened by a request of that race, which the loop's end cuts).
    assert server.status("Aborted_clients") - aborted <= cut
    bad = [r.body[:80] for r in burst.replies if r.status != 200]
    print(f"{statuses} ({stored} stored), {len(burst.errors)} refused; exit in {took:.2f} s {bad}")


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_database_restart_mid_burst_loses_and_doubles_no_200(
    private_db: tuple[MariaDB, Settings], how: str
) -> None:
    server, settings = private_db
    with run_hypercorn(settings, extra_env={"DB_QUERY_TIMEOUT": "2"}) as web:
        burst = Burst(web.url, THREADS)
        try:
            wait_for_answers(burst, 200)
            server.stop() if how == "stop" else server.kill()
            time.sleep(0.5)
            server.start()
            restarted = time.monotonic()
            wait_for_status(web.url, "/readyz", 200, within=5)
            recovered = time.monotonic() - restarted
            before = burst.statuses().get(200, 0)
            time.sleep(1)
        finally:
            burst.stop()
        assert burst.statuses()[200] > before, "increments succeed again after the restart"
        assert web.process.poll() is None
        log = web.log()
        assert "Traceback" not in log, log
    stored = server.stored_count(settings)
    assert burst.errors == [], "no connection failed or hung"
    assert burst.statuses().get(503, 0) > 0, "the outage was seen"
    assert_each_200_counted_once(burst, stored)
    print(
        f"{how}: {burst.statuses()}, stored {stored}, 503s that counted: "
        f"{stored - len(burst.counted())}; ready {recovered:.2f} s after restart"
    )
