"""The database goes away while Hypercorn serves: quick 503s, no hang, recovery without restart."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest

from counter.config import Settings
from harness.mariadb import MariaDB
from harness.poll import poll_until
from harness.provision import stored_count
from harness.servers import Server, run_hypercorn
from http_client import Reply, fetch, wait_for_status

pytestmark = pytest.mark.processes

QUERY_TIMEOUT = 3.0
FAST_503 = 2.0
RECOVERY = 5.0
UNAVAILABLE = "The database is unavailable right now"


@pytest.fixture
def web(private_settings: Settings) -> Iterator[Server]:
    """Hypercorn on the private server's database, with a short DB_QUERY_TIMEOUT."""
    with run_hypercorn(dataclasses.replace(private_settings, db_query_timeout=QUERY_TIMEOUT)) as s:
        yield s


def assert_clean_503(reply: Reply) -> None:
    """A 503 that says what happened, fast, with no internals."""
    assert reply.status == 503, reply
    assert reply.seconds < FAST_503, reply
    assert reply.headers["Retry-After"]
    assert UNAVAILABLE in reply.text
    assert "Traceback" not in reply.text


def test_stopped_database_gives_503_then_the_count_continues(
    private_server: MariaDB, private_settings: Settings, web: Server
) -> None:
    for expected in (1, 2, 3):
        assert fetch(web.url, "/api/counter", "POST").count == expected
    # The app's pool holds connections as the unprivileged account, never as root.
    users = private_server.execute("SELECT DISTINCT user FROM information_schema.processlist")
    assert (private_settings.db_username,) in users

    private_server.stop()
    for _ in range(3):  # stale pooled connections first, then refused new ones
        for path, method in [("/", "GET"), *PROBES]:
            assert_clean_503(fetch(web.url, path, method))
        error = fetch(web.url, "/api/counter").json()["error"]
        assert error["code"] == "database_unavailable"  # type: ignore[index]
        assert fetch(web.url, "/healthz").status == 200

    private_server.start()
    started = time.monotonic()
    reply = wait_for_status(web.url, "/api/counter", 200, within=RECOVERY, method="POST")
    print(f"recovered {time.monotonic() - started:.2f} s after the database came back")
    assert reply.count == 4, "the count continues from the stored value"
    assert fetch(web.url, "/").status == 200
    assert fetch(web.url, "/api/counter").count == 5
    assert stored_count(private_settings) == 5
    assert fetch(web.url, "/readyz").status == 200
    assert web.process.poll() is None, "the server survived"
    assert "Traceback" not in web.log()


PROBES = [("/api/counter", "POST"), ("/api/counter", "GET"), ("/readyz", "GET")]


def test_frozen_database_is_cut_off_at_the_query_timeout(
    private_server: MariaDB, private_settings: Settings, web: Server
) -> None:
    assert fetch(web.url, "/api/counter", "POST").count == 1
    private_server.freeze()  # accepts, never answers: without a time limit, requests would hang
    try:
        slow = [fetch(web.url, path, method) for path, method in PROBES]
        assert fetch(web.url, "/healthz").seconds < 0.5
    finally:
        private_server.thaw()
    for reply in slow:
        assert reply.status == 503, reply
        assert reply.seconds < QUERY_TIMEOUT + 1.0, reply

    reply = wait_for_status(web.url, "/api/counter", 200, within=RECOVERY, method="POST")
    # A 200 is never lost or counted twice; the POST that got 503 may or may not have counted.
    assert 2 <= reply.count <= 3
    assert stored_count(private_settings) == reply.count
    assert "Traceback" not in web.log()


def test_connections_closed_by_wait_timeout_are_replaced_unseen(
    private_server: MariaDB, private_settings: Settings
) -> None:
    private_server.execute("SET GLOBAL wait_timeout = 2")
    with run_hypercorn(private_settings) as web:
        for _ in range(5):
            assert fetch(web.url, "/api/counter").status == 200
            assert fetch(web.url, "/api/counter", "POST").status == 200
        assert app_connections(private_server, private_settings) > 0
        poll_until(  # the server closes every idle connection the pool holds
            lambda: app_connections(private_server, private_settings) == 0, 10, "idle ones closed"
        )
        replies = [fetch(web.url, path) for path in ("/api/counter", "/api/counter", "/", "/")]
        assert [r.status for r in replies] == [200] * len(replies), web.log()
        assert fetch(web.url, "/api/counter", "POST").count == 8
        assert "unavailable" not in web.log()
        assert "Traceback" not in web.log()


def app_connections(server: MariaDB, settings: Settings) -> int:
    """How many connections the app's account has open on the server."""
    query = "SELECT COUNT(*) FROM information_schema.processlist WHERE user = %s"
    return int(str(server.execute(query, (settings.db_username,))[0][0]))
