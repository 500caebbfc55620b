"""The test utility's chores as MySQL root: throwaway databases, grants, Alembic runs."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql
from alembic import command
from alembic.config import Config

from counter.config import Settings

WEB_DIR = Path(__file__).resolve().parent.parent
SAFE_NAME = re.compile(r"^[A-Za-z0-9_]+_test$")


class UnsafeDatabaseError(RuntimeError):
    """The tests only ever create, migrate and drop databases whose names end in `_test`."""


class RootAccessError(RuntimeError):
    """The test utility could not log in as root to create its throwaway database."""


def root_connection(settings: Settings) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
    """Root on the app's server; MYSQL_ROOT_PASSWORD (and MYSQL_ROOT_USER) come from .quartenv."""
    user = os.environ.get("MYSQL_ROOT_USER", "root")
    try:
        return pymysql.connect(
            host=settings.db_host,
            port=settings.db_port,
            user=user,
            password=os.environ.get("MYSQL_ROOT_PASSWORD", ""),
            autocommit=True,
        )
    except pymysql.err.OperationalError as err:
        raise RootAccessError(
            f"the tests log in as {user!r} on {settings.db_host}:{settings.db_port} to create "
            f"their throwaway database, and the server said: {err.args[-1]}. Set "
            "MYSQL_ROOT_PASSWORD (and MYSQL_ROOT_USER) for an account that may create databases, "
            "or set DB_PORT to a free port so `make local-db` starts a private server there."
        ) from None


def app_connection(settings: Settings) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
    """The app's own account on its server, for checking what it may and may not do."""
    return pymysql.connect(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_username,
        password=settings.db_password,
    )


def throwaway_name(base: str) -> str:
    """A name no parallel run will pick, ending in `_test`."""
    return f"{base}_{secrets.token_hex(4)}_test"


def check_safe(name: str) -> None:
    """Refuse anything that could be a real database."""
    if not SAFE_NAME.match(name):
        raise UnsafeDatabaseError(
            f"refusing to touch database {name!r}: its name must end in _test"
        )


def create_app_database(cur: pymysql.cursors.Cursor, settings: Settings, name: str) -> None:
    """Create `name` and grant the app's account on it alone (creating the account if needed:
    a server the project did not set up may not have it)."""
    check_safe(name)
    cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    cur.execute(
        "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s",
        (settings.db_username, settings.db_password),
    )
    cur.execute(f"GRANT ALL ON `{name}`.* TO %s@'%%'", (settings.db_username,))


@contextmanager
def throwaway_database(settings: Settings, name: str) -> Iterator[Settings]:
    """Create `name`, grant the app's account on it, yield settings that point there, drop it."""
    check_safe(name)
    conn = root_connection(settings)
    try:
        with conn.cursor() as cur:
            create_app_database(cur, settings, name)
        yield dataclasses.replace(settings, database_name=name)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def alembic_config(settings: Settings) -> Config:
    """Alembic's config for `settings`' database, the URL injected rather than written anywhere."""
    check_safe(settings.database_name)
    config = Config(str(WEB_DIR / "alembic.ini"))
    config.attributes["database_url"] = settings.database_url()
    config.attributes["configure_logging"] = False
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    """`alembic upgrade <revision>` against the throwaway database."""
    command.upgrade(alembic_config(settings), revision)
