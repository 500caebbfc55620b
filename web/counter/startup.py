"""Start-up guards: wait for a database that may still be initialising; migrate one at a time."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from counter.config import Settings
from counter.db import describe, is_unavailable

log = logging.getLogger(__name__)

# MySQL error codes that no amount of waiting fixes: wrong password, no rights, no such database,
# unknown host. Fail at once with the server's own words.
PERMANENT_ERROR_CODES = frozenset({1044, 1045, 1049, 2005})
MAX_RETRY_DELAY = 5.0
# One lock per database, named by a digest: MySQL caps lock names at 64 characters, database
# names are allowed 64 on their own.
MIGRATION_LOCK_NAME = "CONCAT('alembic.', SHA1(DATABASE()))"
# One attempt may take this long: a server that accepts but never answers must not eat the budget.
ATTEMPT_TIMEOUT = 10.0


class DatabaseStartupError(RuntimeError):
    """The database never answered, or refused us for a reason waiting cannot fix."""


async def wait_for_database(engine: AsyncEngine, patience: float) -> None:
    """Try to connect, pausing 0.5 s to 5 s between tries, until it works or `patience` ends."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    delay = 0.5
    attempt = 1
    where = f"{engine.url.host}:{engine.url.port}"
    while True:
        try:
            async with asyncio.timeout(min(ATTEMPT_TIMEOUT, max(deadline - loop.time(), 0.1))):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            if attempt > 1:
                log.warning("database at %s is up after %d attempts", where, attempt)
            return
        except Exception as err:
            if not is_unavailable(err):
                raise
            reason = _reason(err)
            if _error_code(err) in PERMANENT_ERROR_CODES or _unknown_host(err):
                raise DatabaseStartupError(f"database at {where} refused us: {reason}") from None
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise DatabaseStartupError(
                    f"database at {where} did not answer within {patience:g} s "
                    f"(DB_STARTUP_TIMEOUT): {reason}"
                ) from None
            pause = min(delay, remaining)
            log.warning(
                "database at %s not ready (attempt %d): %s; retrying in %.1f s",
                where,
                attempt,
                reason,
                pause,
            )
            await asyncio.sleep(pause)
            delay = min(delay * 2, MAX_RETRY_DELAY)
            attempt += 1


def check_database(settings: Settings) -> None:
    """Block until the app's database answers, at most DB_STARTUP_TIMEOUT; raise if it doesn't."""

    async def check() -> None:
        engine = create_async_engine(
            settings.database_url(),
            poolclass=NullPool,
            connect_args={"connect_timeout": settings.db_connect_timeout},
        )
        try:
            await wait_for_database(engine, settings.db_startup_timeout)
        finally:
            await engine.dispose()

    asyncio.run(check())


@contextmanager
def migration_lock(connection: Connection, timeout: int) -> Iterator[None]:
    """Hold a MySQL named lock (GET_LOCK) so concurrent `alembic upgrade` runs take turns.

    The lock belongs to the session, not the transaction, so it survives the commits that the
    migrations make; we commit right after taking it so that Alembic starts its own transaction.
    """
    got = connection.scalar(
        text(f"SELECT GET_LOCK({MIGRATION_LOCK_NAME}, :timeout)"), {"timeout": timeout}
    )
    connection.commit()
    if got != 1:
        raise DatabaseStartupError(f"another migration held the lock for more than {timeout} s")
    try:
        yield
    finally:
        connection.execute(text(f"SELECT RELEASE_LOCK({MIGRATION_LOCK_NAME})"))
        connection.commit()


def _error_code(err: BaseException) -> int | None:
    args: tuple[object, ...] = getattr(getattr(err, "orig", None), "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _unknown_host(err: BaseException) -> bool:
    """The host name does not resolve (EAI_NONAME); a temporary DNS failure (EAI_AGAIN) is retried.

    The drivers report both as 2003 "Can't connect", with the resolver's error as the cause.
    """
    cause = getattr(getattr(err, "orig", None), "__cause__", None)
    return isinstance(cause, socket.gaierror) and cause.errno == socket.EAI_NONAME


def _reason(err: BaseException) -> str:
    return describe(err, timeout="the server accepted the connection but did not answer")
