"""The app's database and account, made as root: written once for `make local-db`, the tests'
throwaway databases and the fault tests' private servers; plus Alembic runs on them."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TypeAlias

import pymysql
from alembic import command
from alembic.config import Config

from counter.config import Settings

WEB_DIR = Path(__file__).resolve().parent.parent
SAFE_NAME = re.compile(r"^[A-Za-z0-9_]+_test$")
# Access denied (1044, 1045), host not allowed (1130), unix_socket-only root (1698): retrying
# never helps, so these end at once.
ACCESS_DENIED = frozenset({1044, 1045, 1130, 1698})
Connection: TypeAlias = "pymysql.connections.Connection[pymysql.cursors.Cursor]"


class RootAccessError(RuntimeError):
    """Root (MYSQL_ROOT_USER / MYSQL_ROOT_PASSWORD) cannot log in on the configured server."""


class UnsafeDatabaseError(RuntimeError):
    """The tests only ever create, migrate and drop databases whose names end in `_test`."""


def connect_root(settings: Settings, timeout: float = 5.0) -> Connection:
    """Root over TCP on `settings`' server (MYSQL_ROOT_USER, MYSQL_ROOT_PASSWORD), autocommit."""
    return pymysql.connect(
        host=settings.db_host, port=settings.db_port, user=root_user(), autocommit=True,
        password=os.environ.get("MYSQL_ROOT_PASSWORD", ""), connect_timeout=timeout,
    )  # fmt: skip


def root_user() -> str:
    """The account the tests and tools create databases with."""
    return os.environ.get("MYSQL_ROOT_USER") or "root"


def root_connection(settings: Settings, timeout: float = 5.0) -> Connection:
    """`connect_root`, or RootAccessError in one line when the server refuses root."""
    try:
        return connect_root(settings, timeout)
    except pymysql.err.OperationalError as err:
        if err.args[0] not in ACCESS_DENIED:
            raise
        raise RootAccessError(
            f"{root_user()!r} cannot log in on {settings.db_host}:{settings.db_port} "
            f"({err.args[1]}, {err.args[0]}): run `make local-db` (it starts the project's own "
            "server on a free port when root is refused), or set MYSQL_ROOT_PASSWORD/_USER"
        ) from None


def app_statements(settings: Settings) -> list[tuple[str, tuple[str, ...]]]:
    """The app's database and its account with rights on that database only (as MySQL's image)."""
    user, database = settings.db_username, settings.database_name
    return [
        (f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4", ()),
        ("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (user, settings.db_password)),
        (f"GRANT ALL ON `{database}`.* TO %s@'%%'", (user,)),
    ]


def root_over_tcp_statements(password: str) -> list[tuple[str, tuple[str, ...]]]:
    """On a private server: root from 127.0.0.1 with `password`, as the tests and tools log in."""
    return [
        ("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY %s", (password,)),
        ("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY %s", (password,)),
        ("GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION", ()),
    ]


def run_statements(conn: Connection, statements: list[tuple[str, tuple[str, ...]]]) -> None:
    """Run each statement with its arguments, then close `conn`."""
    with closing(conn), conn.cursor() as cur:
        for statement, args in statements:
            cur.execute(statement, args or None)


def throwaway_name(base: str) -> str:
    """A database name no parallel run will pick, ending in `_test`."""
    return f"{base}_{secrets.token_hex(4)}_test"


def check_safe(name: str) -> None:
    """Refuse anything that could be a real database."""
    if not SAFE_NAME.match(name):
        raise UnsafeDatabaseError(f"refusing to touch {name!r}: its name must end in _test")


def new_database(settings: Settings, name: str | None = None) -> Settings:
    """Create a `_test` database (a fresh name by default) the app's account may use; its
    settings. The account is created too: a server the project did not set up may lack it."""
    name = name or throwaway_name(settings.database_name)
    check_safe(name)
    test_settings = dataclasses.replace(settings, database_name=name)
    run_statements(root_connection(settings), app_statements(test_settings))
    return test_settings


@contextmanager
def throwaway_database(settings: Settings, name: str | None = None) -> Iterator[Settings]:
    """`new_database`, dropped at the end."""
    test_settings = new_database(settings, name)
    try:
        yield test_settings
    finally:
        drop = f"DROP DATABASE IF EXISTS `{test_settings.database_name}`"
        run_statements(root_connection(settings), [(drop, ())])


def alembic_config(settings: Settings) -> Config:
    """Alembic's config for `settings`' database, the URL injected rather than written anywhere."""
    check_safe(settings.database_name)
    config = Config(str(WEB_DIR / "alembic.ini"))
    config.attributes["database_url"] = settings.database_url()
    config.attributes["configure_logging"] = False
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    """`alembic upgrade <revision>` on a throwaway database."""
    command.upgrade(alembic_config(settings), revision)


def stored_count(settings: Settings) -> int:
    """The counter row's value, read as root on a connection of its own."""
    with closing(root_connection(settings)) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count FROM `{settings.database_name}`.counter WHERE id = 1")  # noqa: S608
        row = cur.fetchone()
    assert row is not None, "the counter row is missing"
    return int(row[0])
