"""Readiness on a real Hypercorn: a database not migrated, or without its counter row, answers
503 "run `make migrate`" on every path until `make migrate` repairs it."""

import pytest

from counter.config import Settings
from harness.provision import migrate, root_connection, throwaway_database
from harness.servers import Server, run_hypercorn
from http_client import fetch

PATHS = ("/readyz", "/", "/api/counter")


def assert_503_until_make_migrate(web: Server, settings: Settings) -> None:
    """Every path says "run `make migrate`"; once it has run, they answer 200."""
    for path in PATHS:
        reply = fetch(web.url, path)
        assert reply.status == 503, path
        assert "run `make migrate`" in reply.text
    migrate(settings)  # what the advice says: alembic upgrade head
    for path in PATHS:
        assert fetch(web.url, path).status == 200, path


@pytest.mark.processes
def test_unmigrated_or_rowless_database_is_503_until_make_migrate(
    server_settings: Settings,
) -> None:
    with throwaway_database(server_settings) as empty, run_hypercorn(empty) as web:
        assert_503_until_make_migrate(web, empty)
        with root_connection(empty) as conn, conn.cursor() as cur:
            cur.execute(f"USE `{empty.database_name}`")
            cur.execute("DELETE FROM counter")  # the migration environment restores the row
        assert_503_until_make_migrate(web, empty)
