"""`make local-db` where the MariaDB running lets root in by unix socket only (Debian's default)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from dotenv import dotenv_values

from counter.config import Settings
from harness.mariadb import MariaDB
from harness.provision import WEB_DIR, on_local_port, root_connection
from harness.tools import free_port

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def socket_only_mariadb(
    fresh_datadir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MariaDB]:
    """A MariaDB whose root@localhost uses unix_socket auth only, as Debian's package sets it up."""
    home = tmp_path_factory.mktemp("debian")
    server = MariaDB(home, free_port(), options=()).copy_data(fresh_datadir)  # names resolved
    server.start()
    yield server
    server.stop()


def localdb(command: str, local_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    """`python -m harness.localdb <command>` on DB_PORT=`port`, with .local/ in `local_dir`."""
    env = {**os.environ, "DB_HOST": "127.0.0.1", "DB_PORT": str(port),
           "COUNTER_LOCAL_DIR": str(local_dir)}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "harness.localdb", command],
        cwd=WEB_DIR, env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def root_logs_in(settings: Settings, port: int) -> None:
    root_connection(on_local_port(settings, port)).close()


def test_refused_root_starts_the_private_server_on_a_free_port(
    socket_only_mariadb: MariaDB, tmp_path: Path, server_settings: Settings
) -> None:
    local_dir, port = tmp_path / "local", socket_only_mariadb.port
    started = time.monotonic()
    result = localdb("ensure", local_dir, port)
    took = time.monotonic() - started
    try:
        assert result.returncode == 0, result
        assert took < 30, "no retries (60 s before) on an access-denied error"
        private = int(dotenv_values(local_dir / "quartenv")["DB_PORT"] or 0)
        assert private not in (0, port)
        # 1698 as on Debian; 1130 where 127.0.0.1 does not resolve to localhost.
        line = rf"root cannot log in on 127.0.0.1:{port} \((1698|1130)\): the project's private"
        assert re.search(line, result.stdout), result.stdout
        assert result.stdout.strip().splitlines()[-1].count(f"DB_PORT={private}") == 1
        root_logs_in(server_settings, private)  # both root and the app's account, over TCP
        pymysql.connect(host="127.0.0.1", port=private, user=server_settings.db_username,
                        password=server_settings.db_password).close()  # fmt: skip
        again = localdb("ensure", local_dir, private)  # as the next make target sees it
        assert again.returncode == 0, again
        assert f"root logs in on 127.0.0.1:{private}" in again.stdout
    finally:
        stopped = localdb("stop", local_dir, port)
    assert stopped.returncode == 0, stopped
    assert "stopped the private server" in stopped.stdout
    assert localdb("status", local_dir, port).stdout.strip() == "[local-db] private server stopped"


def test_a_test_session_stops_at_once_when_root_is_refused(socket_only_mariadb: MariaDB) -> None:
    env = {**os.environ, "DB_HOST": "127.0.0.1", "DB_PORT": str(socket_only_mariadb.port)}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_views.py"],
        cwd=WEB_DIR, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert time.monotonic() - started < 30  # 94 s before, one failure per test
    assert result.returncode != 0
    assert result.stdout.count("'root' cannot log in on 127.0.0.1") == 1, result.stdout
    assert " passed" not in result.stdout, result.stdout
    assert " error" not in result.stdout, result.stdout


def test_a_server_made_by_the_old_tool_is_taken_over(
    fresh_datadir: Path, tmp_path: Path, server_settings: Settings
) -> None:
    # db/local_server.py left root@localhost with the password and no root@127.0.0.1 account.
    old = MariaDB(tmp_path / "local" / "mysql", free_port()).copy_data(fresh_datadir)
    old.start()
    old.execute(
        "ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (os.environ["MYSQL_ROOT_PASSWORD"],)
    )
    old.stop()
    try:
        result = localdb("ensure", tmp_path / "local", old.port)
        assert result.returncode == 0, result
        root_logs_in(server_settings, old.port)
    finally:
        localdb("stop", tmp_path / "local", old.port)
