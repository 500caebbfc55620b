"""Alembic's async environment: the URL comes from the app's settings, never from alembic.ini."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import URL, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from counter.config import Settings, SettingsError, load_quartenv
from counter.startup import DatabaseStartupError, migration_lock, wait_for_database
from counter.tables import metadata

config = context.config

# Keep the app's loggers alive when Alembic runs inside a process that has them (the tests).
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata

# Seconds a process waits for another one's migration to finish before giving up.
MIGRATION_LOCK_TIMEOUT = 300


def database_url() -> tuple[URL, float]:
    """The URL the tests injected, or the app's own from the environment (and .quartenv)."""
    injected = config.attributes.get("database_url")
    if injected is not None:
        return injected, 10.0
    load_quartenv()
    settings = Settings.from_env()
    return settings.database_url(), settings.db_startup_timeout


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (`alembic upgrade head --sql`)."""
    context.configure(
        url=database_url()[0],
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Migrate while holding the named lock, so parallel starts take turns."""
    with migration_lock(connection, MIGRATION_LOCK_TIMEOUT):
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


async def run_async_migrations() -> None:
    """Wait for the server (it may still be starting), then migrate on one connection."""
    url, startup_timeout = database_url()
    connectable = create_async_engine(url, poolclass=pool.NullPool)
    try:
        await wait_for_database(connectable, startup_timeout)
        async with connectable.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await connectable.dispose()


def run_migrations_online() -> None:
    """Run against the live database; a bad setting or a missing server ends in one line."""
    try:
        asyncio.run(run_async_migrations())
    except (SettingsError, DatabaseStartupError) as err:
        raise SystemExit(f"migrations: {err}") from None


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
