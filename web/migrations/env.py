"""Alembic's async environment (`alembic init -t async`), with the app's URL and a named lock."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from sqlalchemy import URL, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from counter.config import Settings, SettingsError, load_quartenv
from counter.queries import insert_missing_counter_row
from counter.tables import metadata

config = context.config

# Keep the app's loggers alive when Alembic runs inside a process that has them (the tests).
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata

# Seconds a process waits for another one's migration to finish before giving up.
MIGRATION_LOCK_TIMEOUT = 300
# One lock per database, named by a digest: MySQL caps lock names at 64 characters.
MIGRATION_LOCK_NAME = "CONCAT('alembic.', SHA1(DATABASE()))"


def database_url() -> URL:
    """The URL the tests injected, or the app's own from the environment (and .quartenv)."""
    injected: URL | None = config.attributes.get("database_url")
    if injected is not None:
        return injected
    load_quartenv()
    return Settings.from_env().database_url()


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Hold a MySQL named lock (GET_LOCK) so concurrent `alembic upgrade` runs take turns.

    The lock belongs to the session, not the transaction, so it survives the migrations' commits.
    """
    got = connection.scalar(
        text(f"SELECT GET_LOCK({MIGRATION_LOCK_NAME}, :timeout)"),
        {"timeout": MIGRATION_LOCK_TIMEOUT},
    )
    connection.commit()  # so that Alembic begins its own transaction
    if got != 1:
        raise SystemExit(
            f"migrations: another migration held the lock for {MIGRATION_LOCK_TIMEOUT} s"
        )
    try:
        yield
    finally:
        connection.execute(text(f"SELECT RELEASE_LOCK({MIGRATION_LOCK_NAME})"))
        connection.commit()


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (`alembic upgrade head --sql`)."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Migrate while holding the named lock, so parallel starts take turns."""
    with migration_lock(connection):
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
            insert_missing_counter_row(connection)


async def run_async_migrations() -> None:
    """Migrate on one connection (the start command's preflight has waited for the server)."""
    connectable = create_async_engine(database_url(), poolclass=pool.NullPool)
    try:
        async with connectable.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await connectable.dispose()


def run_migrations_online() -> None:
    """Run against the live database; a bad setting ends in one line."""
    try:
        asyncio.run(run_async_migrations())
    except SettingsError as err:
        raise SystemExit(f"migrations: configuration error: {err}") from None


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
