"""The app's database and account, made as root (by `make local-db` and the tests), and Alembic."""

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
# Access denied (1044, 1045), host not allowed (1130), unix_socket-only root (1698): no retry helps.
ACCESS_DENIED = frozenset({1044, 1045, 1130, 1698})
Connection: TypeAlias = "pymysql.connections.Connection[pymysql.cursors.Cursor]"


class RootAccessError(RuntimeError):
    """Root (MYSQL_ROOT_USER / MYSQL_ROOT_PASSWORD) cannot log in on the configured server."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class UnsafeDatabaseError(RuntimeError):
    """The tests only ever create, migrate and drop databases whose names end in `_test`."""


def root_connection(settings: Settings, timeout: float = 5.0) -> Connection:
    """Root over TCP on `settings`' server, autocommit; RootAccessError when it is refused."""
    user = os.environ.get("MYSQL_ROOT_USER") or "root"
    try:
        return pymysql.connect(
            host=settings.db_host, port=settings.db_port, user=user, autocommit=True,
            password=os.environ.get("MYSQL_ROOT_PASSWORD", ""), connect_timeout=timeout,
        )  # fmt: skip
    except pymysql.err.OperationalError as err:
        if err.args[0] not in ACCESS_DENIED:
            raise
        raise RootAccessError(
            f"{user!r} cannot log in on {settings.db_host}:{settings.db_port} ({err.args[1]}, "
            f"{err.args[0]}): run `make local-db`, or set MYSQL_ROOT_PASSWORD/_USER",
            err.args[0],
        ) from None


def create_app_database(conn: Connection, settings: Settings) -> None:
    """On root's `conn`, then closed: the app's database and its account, with rights on it only."""
    user, password, database = settings.db_username, settings.db_password, settings.database_name
    with closing(conn), conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4")
        cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (user, password))
        cur.execute(f"GRANT ALL ON `{database}`.* TO %s@'%%'", (user,))


def check_safe(name: str) -> None:
    """Refuse anything that could be a real database."""
    if not re.fullmatch(r"[A-Za-z0-9_]+_test", name):
        raise UnsafeDatabaseError(f"refusing to touch {name!r}: its name must end in _test")


def on_local_port(settings: Settings, port: int) -> Settings:
    """`settings` pointed at the server on 127.0.0.1:`port` (a private one, usually)."""
    return dataclasses.replace(settings, db_host="127.0.0.1", db_port=port)


def new_database(settings: Settings, name: str | None = None) -> Settings:
    """A new `_test` database (by default a name no parallel run picks) and the app's account."""
    name = name or f"{settings.database_name}_{secrets.token_hex(4)}_test"
    check_safe(name)
    test_settings = dataclasses.replace(settings, database_name=name)
    create_app_database(root_connection(settings), test_settings)
    return test_settings


@contextmanager
def throwaway_database(settings: Settings, name: str | None = None) -> Iterator[Settings]:
    """`new_database`, dropped at the end with the account's grant on it (DROP keeps grants)."""
    test_settings = new_database(settings, name)
    try:
        yield test_settings
    finally:
        database, user = test_settings.database_name, test_settings.db_username
        with closing(root_connection(settings)) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cur.execute(f"REVOKE ALL ON `{database}`.* FROM %s@'%%'", (user,))


def alembic_config(settings: Settings) -> Config:
    """Alembic's config for `settings`' database, the URL injected rather than written anywhere."""
    check_safe(settings.database_name)
    config = Config(str(WEB_DIR / "alembic.ini"))
    config.attributes.update(database_url=settings.database_url(), configure_logging=False)
    return config


def migrate(settings: Settings) -> None:
    """`alembic upgrade head` on a throwaway database."""
    command.upgrade(alembic_config(settings), "head")


def stored_count(settings: Settings) -> int:
    """The counter row's value, read as root on a connection of its own."""
    with closing(root_connection(settings)) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count FROM `{settings.database_name}`.counter WHERE id = 1")  # noqa: S608
        row = cur.fetchone()
    assert row is not None, "the counter row is missing"
    return int(row[0])
