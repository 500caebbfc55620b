"""The start command (start.sh): it waits for a late database, then migrates and serves; a database
that never comes or refuses us ends start-up with one line; the app's account is unprivileged."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest
from mirakuru import SimpleExecutor

from counter.config import Settings
from harness.mariadb import MariaDB
from harness.poll import poll_until
from harness.provision import WEB_DIR, new_database
from harness.servers import app_env
from harness.tools import free_port
from http_client import fetch, wait_for_status

pytestmark = pytest.mark.processes

START = ["sh", "start.sh"]


def start_env(settings: Settings, port: int, startup_timeout: float) -> dict[str, str]:
    """The container's environment on the host: exactly `settings`, the venv's tools on PATH."""
    settings = dataclasses.replace(settings, db_startup_timeout=startup_timeout)
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return {**os.environ, **app_env(settings, port), "PATH": path}


def failed_start(settings: Settings, startup_timeout: float = 20) -> tuple[str, float]:
    """Run start.sh, expecting a failure without a traceback; its stderr lines and duration."""
    started = time.monotonic()
    result = subprocess.run(
        START, cwd=WEB_DIR, env=start_env(settings, free_port(), startup_timeout),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip(), time.monotonic() - started


def test_start_waits_for_a_late_database_then_migrates_and_serves(
    server_settings: Settings, private_server: MariaDB, tmp_path: Path
) -> None:
    on_private = dataclasses.replace(
        server_settings, db_host="127.0.0.1", db_port=private_server.port
    )
    settings = new_database(on_private)  # account and empty database, as on the image's first
    private_server.stop()  # boot; then the server is "still initialising"
    port, log = free_port(), tmp_path / "start.log"
    env = start_env(settings, port, startup_timeout=30)
    with (
        log.open("w") as out,
        SimpleExecutor(START, cwd=str(WEB_DIR), envvars=env, stdout=out, stderr=subprocess.STDOUT),
    ):
        poll_until(lambda: "database not ready (attempt 1)" in log.read_text(), 30, "a retry")
        private_server.start()
        base = f"http://127.0.0.1:{port}"
        assert wait_for_status(base, "/readyz", 200, within=30).status == 200
        assert fetch(base, "/api/counter", "POST").count == 1
    output = log.read_text()
    assert "Running upgrade  -> " in output, output
    assert "Traceback" not in output, output


def test_a_database_that_never_comes_ends_start_up_in_one_line(settings: Settings) -> None:
    port = free_port()  # nothing listens, and nothing ever will
    nowhere = dataclasses.replace(settings, db_host="127.0.0.1", db_port=port)
    lines, took = failed_start(nowhere, startup_timeout=3)
    assert took < 15
    assert lines.splitlines()[-1] == (
        f"counter: database at 127.0.0.1:{port} did not answer within 3 s (DB_STARTUP_TIMEOUT): "
        "Can't connect to MySQL server on '127.0.0.1' (2003): Connection refused"
    ), lines
    assert sum("retrying in" in line for line in lines.splitlines()) >= 2, "retries are logged"


def test_a_wrong_password_ends_start_up_at_once_in_one_line(settings: Settings) -> None:
    wrong = dataclasses.replace(settings, db_password="not-the-password")
    lines, took = failed_start(wrong)
    assert took < 10, "no retries for a wrong password"
    assert re.fullmatch(
        rf"counter: database at {wrong.db_host}:{wrong.db_port} refused us: Access denied for "
        rf"user '{wrong.db_username}'@'[^']+' \(using password: YES\) \(1045\)",
        lines,
    ), lines


def test_an_unknown_host_ends_start_up_at_once_in_one_line(settings: Settings) -> None:
    lines, took = failed_start(dataclasses.replace(settings, db_host="db.invalid"))
    assert took < 10
    assert lines == (
        f"counter: database at db.invalid:{settings.db_port} refused us: Can't connect to MySQL "
        "server on 'db.invalid' (2003): Name or service not known"
    )


def test_the_app_account_holds_no_global_privileges(settings: Settings) -> None:
    conn = pymysql.connect(host=settings.db_host, port=settings.db_port,
                           user=settings.db_username, password=settings.db_password)  # fmt: skip
    with conn, conn.cursor() as cur:
        cur.execute("SHOW GRANTS FOR CURRENT_USER()")
        grants = [str(row[0]) for row in cur.fetchall()]
        with pytest.raises(pymysql.err.OperationalError) as denied:
            cur.execute("SELECT user FROM mysql.user")
        with pytest.raises(pymysql.err.OperationalError) as refused:
            cur.execute("CREATE DATABASE counter_escape_test")
    assert denied.value.args[0] == 1142  # SELECT command denied
    assert refused.value.args[0] == 1044  # access denied to a database of its own making
    for grant in grants:
        assert grant.startswith("GRANT USAGE ON *.*") or " ON *.* " not in grant, grant
    assert any(f"`{settings.database_name}`" in grant for grant in grants), grants


def test_production_refuses_debug_in_one_line(settings: Settings) -> None:
    secret = "a-long-enough-random-production-secret"
    production = dataclasses.replace(settings, environment="production", secret_key=secret)
    lines, _ = failed_start(dataclasses.replace(production, debug=True))
    assert lines.startswith("counter: configuration error: QUART_DEBUG is on"), lines
