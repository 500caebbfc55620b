"""Start-up order: the container's command waits for a late database, and gives up in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from counter.config import Settings
from fault_client import wait_for_status
from http_client import fetch
from mariadb_server import private_mariadb
from servers import WEB_DIR, free_port, server_env, stop, wait_for_http

pytestmark = pytest.mark.processes

VENV_BIN = str(Path(sys.executable).parent)


def entrypoint_env(settings: Settings, port: int, startup_timeout: float) -> dict[str, str]:
    """The container's environment on the host: settings, bind address, tools on PATH."""
    return server_env(
        settings,
        port,
        DB_STARTUP_TIMEOUT=str(startup_timeout),
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    )


def test_entrypoint_waits_for_a_late_database_then_migrates_and_serves(
    server_settings: Settings,
) -> None:
    with private_mariadb() as server, tempfile.TemporaryFile() as log:
        settings = server.app_database(server_settings)  # account and empty database, as on
        server.stop()  # the image's first boot; then the server is "still initialising"
        port = free_port()
        web = subprocess.Popen(
            ["sh", "docker-entrypoint.sh"],
            cwd=WEB_DIR,
            env=entrypoint_env(settings, port, startup_timeout=30),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            time.sleep(3)
            assert web.poll() is None, "gave up while the database was still starting"
            server.start()
            started = time.monotonic()
            wait_for_http(f"http://127.0.0.1:{port}/healthz", web)
            base = f"http://127.0.0.1:{port}"
            assert wait_for_status(base, "/readyz", 200, within=5).status == 200
            serving = time.monotonic() - started
            assert fetch(base, "/api/counter", "POST").count == 1
        finally:
            stop(web)
        log.seek(0)
        output = log.read().decode(errors="replace")
    assert "not ready (attempt 1)" in output, output
    assert "Running upgrade  -> " in output, output
    assert "Traceback" not in output, output
    print(f"serving {serving:.1f} s after the database started")


def test_entrypoint_gives_up_with_one_line_naming_the_database(
    server_settings: Settings,
) -> None:
    port = free_port()  # nothing listens, and nothing ever will
    settings = Settings(**{**vars(server_settings), "db_host": "127.0.0.1", "db_port": port})
    started = time.monotonic()
    result = subprocess.run(
        ["sh", "docker-entrypoint.sh"],
        cwd=WEB_DIR,
        env=entrypoint_env(settings, free_port(), startup_timeout=3),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert time.monotonic() - started < 15
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        f"migrations: database at 127.0.0.1:{port} did not answer within 3 s "
        "(DB_STARTUP_TIMEOUT): Can't connect to MySQL server on '127.0.0.1' (2003): "
        "Connection refused"
    ), result.stderr
    assert sum("retrying in" in line for line in lines) >= 2, "retries are logged"
