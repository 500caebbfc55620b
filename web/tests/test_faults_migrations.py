"""Three `alembic upgrade head` at once on an empty database queue on GET_LOCK; one migrates."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from subprocess import PIPE

import pytest

from counter.config import Settings
from counter.startup import MIGRATION_LOCK_NAME
from dbutil import root_connection, throwaway_database, throwaway_name
from servers import WEB_DIR, settings_env, stop

pytestmark = pytest.mark.processes

ALEMBIC = [str(Path(sys.executable).parent / "alembic"), "upgrade", "head"]
RUNS = 3


def test_parallel_upgrades_take_turns_and_apply_each_revision_once(
    server_settings: Settings,
) -> None:
    name = throwaway_name(server_settings.database_name)
    with throwaway_database(server_settings, name) as settings:
        holder = root_connection(settings)
        env = {**os.environ, **settings_env(settings)}
        runs: list[subprocess.Popen[bytes]] = []
        try:
            with holder.cursor() as cur:  # hold the migration lock, so all three must queue
                cur.execute(f"USE `{name}`")
                cur.execute(f"SELECT GET_LOCK({MIGRATION_LOCK_NAME}, 0)")
            for _ in range(RUNS):
                runs.append(
                    subprocess.Popen(
                        ALEMBIC, cwd=WEB_DIR, env=env, stdout=PIPE, stderr=subprocess.STDOUT
                    )
                )
            assert waiting_for_lock(settings, RUNS), "all three wait on GET_LOCK"
            assert all(run.poll() is None for run in runs)
            with holder.cursor() as cur:
                cur.execute(f"SELECT RELEASE_LOCK({MIGRATION_LOCK_NAME})")
            outputs = [run.communicate(timeout=30)[0].decode(errors="replace") for run in runs]
            codes = [run.returncode for run in runs]
        finally:
            holder.close()
            for run in runs:
                stop(run)
        assert codes == [0] * RUNS, outputs
        applied = [out.count("Running upgrade ") for out in outputs]
        assert sorted(applied) == [0, 0, revisions()], outputs
        with closing(root_connection(settings)) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT version_num FROM `{name}`.alembic_version")  # noqa: S608
            assert len(cur.fetchall()) == 1
            cur.execute(f"SELECT id, count FROM `{name}`.counter")  # noqa: S608
            assert cur.fetchall() == ((1, 0),)


def revisions() -> int:
    """How many migrations there are to apply from an empty database."""
    return len(list((WEB_DIR / "migrations" / "versions").glob("*.py")))


def waiting_for_lock(settings: Settings, expected: int, within: float = 15.0) -> bool:
    """Poll the process list until `expected` sessions sit in GET_LOCK on `settings`' database."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with closing(root_connection(settings)) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.processlist "
                "WHERE db = %s AND state = 'User lock'",
                (settings.database_name,),
            )
            row = cur.fetchone()
        if row is not None and row[0] >= expected:
            return True
        time.sleep(0.1)
    return False
