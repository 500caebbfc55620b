"""The start command (start.sh): it waits for a late database, then migrates and serves; a database
that never comes or refuses us ends start-up with one line; replicas migrate one at a time."""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from subprocess import PIPE, STDOUT
from typing import Any

import pytest
from mirakuru import SimpleExecutor

from counter.config import Settings
from harness.mariadb import MariaDB
from harness.poll import poll_until
from harness.provision import (
    WEB_DIR,
    new_database,
    on_local_port,
    root_connection,
    throwaway_database,
)
from harness.servers import app_env
from harness.tools import free_port
from http_client import fetch, wait_for_status

pytestmark = pytest.mark.processes

START = ["sh", "start.sh"]
BIN = Path(sys.executable).parent


def start_env(settings: Settings, port: int) -> dict[str, str]:
    """The container's environment on the host: exactly `settings`, the venv's tools on PATH."""
    return {**os.environ, **app_env(settings, port), "PATH": f"{BIN}:{os.environ['PATH']}"}


def test_start_waits_for_a_late_database_then_migrates_and_serves(
    server_settings: Settings, private_server: MariaDB, tmp_path: Path
) -> None:
    # An account and an empty database, as on the image's first boot; then a server "starting".
    settings = new_database(on_local_port(server_settings, private_server.port))
    private_server.stop()
    port, log = free_port(), tmp_path / "start.log"
    env = start_env(dataclasses.replace(settings, db_startup_timeout=30), port)
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


# A change to the settings, and start.sh's last line of stderr.
FAILED_STARTS: dict[str, tuple[dict[str, Any], str]] = {
    "no database": (
        {"db_host": "127.0.0.1", "db_port": 1, "db_startup_timeout": 3},  # 1: nothing listens
        r"counter: database at 127\.0\.0\.1:1 did not answer within 3 s \(DB_STARTUP_TIMEOUT\): "
        r"Can't connect to MySQL server on '127\.0\.0\.1' \(2003\): Connection refused",
    ),
    "wrong password": (
        {"db_password": "not-the-password"},
        r"counter: database at {db_host}:{db_port} refused us: Access denied for user "
        r"'{db_username}'@'[^']+' \(using password: YES\) \(1045\)",
    ),
    "unknown host": (
        {"db_host": "db.invalid"},
        r"counter: database at db\.invalid:{db_port} refused us: Can't connect to MySQL server on "
        r"'db\.invalid' \(2003\): Name or service not known",
    ),
    "debug in production": (
        {"environment": "production", "secret_key": "a-long-enough-random-secret", "debug": True},
        r"counter: configuration error: QUART_DEBUG is on, .*",
    ),
}


@pytest.mark.parametrize("case", FAILED_STARTS)
def test_a_failed_start_ends_in_one_line(settings: Settings, case: str) -> None:
    change, last_line = FAILED_STARTS[case]
    failed = dataclasses.replace(settings, **{"db_startup_timeout": 20, **change})
    env, started = start_env(failed, free_port()), time.monotonic()
    result = subprocess.run(START, cwd=WEB_DIR, env=env, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    *retries, last = result.stderr.strip().splitlines()
    assert re.fullmatch(last_line.format(**dataclasses.asdict(failed)), last), result.stderr
    if case == "no database":  # retried with logged, growing waits until DB_STARTUP_TIMEOUT
        assert sum("retrying in" in line for line in retries) >= 2, result.stderr
        assert took < 15
    else:  # a refusal: at once, nothing else printed
        assert retries == [], result.stderr
        assert took < 10


def test_parallel_upgrades_take_turns_each_revision_applied_once(server_settings: Settings) -> None:
    # migrations/env.py runs Alembic on import, so its lock name is parsed, not imported.
    env_py = (WEB_DIR / "migrations" / "env.py").read_text()
    (literal,) = re.findall(r"^MIGRATION_LOCK_NAME = (.+)$", env_py, re.M)
    lock = ast.literal_eval(literal)
    with (
        throwaway_database(server_settings) as settings,
        closing(root_connection(settings)) as holder,
        holder.cursor() as cur,
    ):
        cur.execute(f"USE `{settings.database_name}`")
        cur.execute(f"SELECT GET_LOCK({lock}, 0)")  # held here, so all three upgrades must queue
        env = {**os.environ, **settings.to_env()}
        upgrade = [str(BIN / "alembic"), "upgrade", "head"]
        runs = [
            subprocess.Popen(upgrade, cwd=WEB_DIR, env=env, stdout=PIPE, stderr=STDOUT, text=True)
            for _ in range(3)
        ]

        def waiting() -> bool:
            query = "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() "
            cur.execute(query + "AND state = 'User lock'")
            return bool(cur.fetchone() == (3,))

        try:
            poll_until(waiting, 15, "3 upgrades in GET_LOCK")
            assert all(run.poll() is None for run in runs)
            cur.execute(f"SELECT RELEASE_LOCK({lock})")
            outputs = [run.communicate(timeout=30)[0] for run in runs]
        finally:
            for run in runs:
                run.kill()
                run.wait()
        assert [run.returncode for run in runs] == [0] * 3, outputs
        revisions = len(list((WEB_DIR / "migrations" / "versions").glob("*.py")))
        applied = [out.count("Running upgrade ") for out in outputs]
        assert sorted(applied) == [0, 0, revisions], outputs
