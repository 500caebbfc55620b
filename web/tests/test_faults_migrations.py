"""Three `alembic upgrade head` at once on an empty database queue on GET_LOCK; one migrates."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from counter.config import Settings
from harness.poll import poll_until
from harness.provision import WEB_DIR, root_connection, throwaway_database

pytestmark = pytest.mark.processes

ALEMBIC = [str(Path(sys.executable).parent / "alembic"), "upgrade", "head"]
RUNS = 3


def migration_lock_name() -> str:
    """migrations/env.py's MIGRATION_LOCK_NAME (the module runs Alembic on import, so: parsed)."""
    tree = ast.parse((WEB_DIR / "migrations" / "env.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "MIGRATION_LOCK_NAME":
            return str(ast.literal_eval(node.value))
    raise AssertionError("MIGRATION_LOCK_NAME not found in migrations/env.py")


def sessions_waiting_for_a_lock(settings: Settings) -> int:
    """How many sessions on `settings`' database sit in GET_LOCK."""
    with closing(root_connection(settings)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.processlist "
            "WHERE db = %s AND state = 'User lock'",
            (settings.database_name,),
        )
        return int(cur.fetchone()[0])


def test_parallel_upgrades_take_turns_and_apply_each_revision_once(
    server_settings: Settings,
) -> None:
    lock = migration_lock_name()
    with (
        throwaway_database(server_settings) as settings,
        closing(root_connection(settings)) as holder,
    ):
        name = settings.database_name
        with holder.cursor() as cur:  # hold the migration lock, so all three must queue
            cur.execute(f"USE `{name}`")
            cur.execute(f"SELECT GET_LOCK({lock}, 0)")
        env = {**os.environ, **settings.to_env()}
        out = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
        runs = [subprocess.Popen(ALEMBIC, cwd=WEB_DIR, env=env, **out) for _ in range(RUNS)]
        try:
            poll_until(lambda: sessions_waiting_for_a_lock(settings) == RUNS, 15, "3 in GET_LOCK")
            assert all(run.poll() is None for run in runs)
            with holder.cursor() as cur:
                cur.execute(f"SELECT RELEASE_LOCK({lock})")
            outputs = [run.communicate(timeout=30)[0] for run in runs]
        finally:
            for run in runs:
                run.kill()
                run.wait()
        assert [run.returncode for run in runs] == [0] * RUNS, outputs
        revisions = len(list((WEB_DIR / "migrations" / "versions").glob("*.py")))
        applied = [out.count("Running upgrade ") for out in outputs]
        assert sorted(applied) == [0, 0, revisions], outputs
        with holder.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM `{name}`.alembic_version")  # noqa: S608
            assert cur.fetchone() == (1,)
            cur.execute(f"SELECT id, count FROM `{name}`.counter")  # noqa: S608
            assert cur.fetchall() == ((1, 0),)
