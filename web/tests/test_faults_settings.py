"""Wrong settings stop start-up in one line with a non-zero exit; production refuses unsafe ones."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest

from counter.config import DEVELOPMENT_SECRET_KEY, Settings
from dbutil import app_connection
from servers import WEB_DIR, free_port, hypercorn_command, server_env

pytestmark = pytest.mark.processes

ALEMBIC = [str(Path(sys.executable).parent / "alembic"), "upgrade", "head"]
GOOD_SECRET = "a-long-enough-random-production-secret"


def run(command: list[str], settings: Settings, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run `command` in web/ with exactly `settings` (plus `extra`) in its environment."""
    env = server_env(settings, free_port(), **extra)
    return subprocess.run(command, cwd=WEB_DIR, env=env, capture_output=True, text=True, timeout=30)


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The process failed, printed no traceback, and its last line says why; that line."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


STEPS = {"migrate": (ALEMBIC, "migrations: "), "hypercorn": (hypercorn_command(), "counter: ")}


@pytest.mark.parametrize("step", STEPS)
def test_wrong_password_fails_at_once_in_one_line(server_settings: Settings, step: str) -> None:
    command, prefix = STEPS[step]
    wrong = dataclasses.replace(server_settings, db_password="not-the-password")
    result = run(command, wrong, DB_STARTUP_TIMEOUT="20")
    line = one_line_failure(result)
    assert re.fullmatch(
        rf"{prefix}database at {wrong.db_host}:{wrong.db_port} refused us: Access denied for "
        rf"user '{wrong.db_username}'@'[^']+' \(using password: YES\) \(1045\)",
        line,
    ), line
    assert len(result.stderr.strip().splitlines()) == 1, "no retries for a wrong password"


@pytest.mark.parametrize("step", STEPS)
def test_unknown_host_fails_at_once_in_one_line(server_settings: Settings, step: str) -> None:
    command, prefix = STEPS[step]
    unknown = dataclasses.replace(server_settings, db_host="db.invalid")
    line = one_line_failure(run(command, unknown, DB_STARTUP_TIMEOUT="20"))
    assert line == (
        f"{prefix}database at db.invalid:{unknown.db_port} refused us: Can't connect to MySQL "
        "server on 'db.invalid' (2003): Name or service not known"
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"SECRET_KEY": DEVELOPMENT_SECRET_KEY}, "SECRET_KEY is the development placeholder"),
        ({"SECRET_KEY": ""}, "SECRET_KEY is not set"),
        ({"QUART_DEBUG": "1"}, "QUART_DEBUG is on, which QUART_ENV=production refuses"),
    ],
)
def test_production_refuses_to_serve_with_unsafe_settings(
    settings: Settings, variables: dict[str, str], message: str
) -> None:
    production = dataclasses.replace(settings, environment="production", secret_key=GOOD_SECRET)
    line = one_line_failure(run(hypercorn_command(), production, **variables))
    assert line.startswith(f"counter: configuration error: {message}"), line


def test_production_app_never_debugs(settings: Settings) -> None:
    production = dataclasses.replace(settings, environment="production", secret_key=GOOD_SECRET)
    check = "import manage; print(manage.app.debug, manage.app.config['DEBUG'])"
    result = run([sys.executable, "-c", check], production, QUART_DEBUG="0")
    assert result.stdout.split() == ["False", "False"], result


def test_the_app_account_holds_no_global_privileges(settings: Settings) -> None:
    conn = app_connection(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GRANTS FOR CURRENT_USER()")
            grants = [str(row[0]) for row in cur.fetchall()]
            with pytest.raises(pymysql.err.OperationalError) as denied:
                cur.execute("SELECT user FROM mysql.user")
            with pytest.raises(pymysql.err.OperationalError) as refused:
                cur.execute("CREATE DATABASE counter_escape_test")
    finally:
        conn.close()
    assert denied.value.args[0] == 1142  # SELECT command denied
    assert refused.value.args[0] == 1044  # access denied to a database of its own making
    for grant in grants:
        assert grant.startswith("GRANT USAGE ON *.*") or " ON *.* " not in grant, grant
    assert any(f"`{settings.database_name}`" in grant for grant in grants), grants
