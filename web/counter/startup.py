"""Start-up guards: wait for a database that may still be initialising; migrate one at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from counter.db import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

# MySQL error codes that no amount of waiting fixes: wrong password, no rights, no such database,
# unknown host. Fail at once with the server's own words.
PERMANENT_ERROR_CODES = frozenset({1044, 1045, 1049, 2005})
MAX_RETRY_DELAY = 5.0


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
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            if attempt > 1:
                log.warning("database at %s is up after %d attempts", where, attempt)
            return
        except UNAVAILABLE_ERRORS as err:
            reason = _reason(err)
            if _error_code(err) in PERMANENT_ERROR_CODES:
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


@contextmanager
def migration_lock(connection: Connection, timeout: int) -> Iterator[None]:
    """Hold a MySQL named lock (GET_LOCK) so concurrent `alembic upgrade` runs take turns.

    The lock belongs to the session, not the transaction, so it survives the commits that the
    migrations make; we commit right after taking it so that Alembic starts its own transaction.
    """
    name = text("CONCAT(DATABASE(), '.alembic')")
    got = connection.scalar(text(f"SELECT GET_LOCK({name}, :timeout)"), {"timeout": timeout})
    connection.commit()
    if got != 1:
        raise DatabaseStartupError(f"another migration held the lock for more than {timeout} s")
    try:
        yield
    finally:
        connection.execute(text(f"SELECT RELEASE_LOCK({name})"))
        connection.commit()


def _error_code(err: BaseException) -> int | None:
    args: tuple[object, ...] = getattr(getattr(err, "orig", None), "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _reason(err: BaseException) -> str:
    orig = getattr(err, "orig", None) or err
    args: tuple[object, ...] = getattr(orig, "args", ())
    if len(args) == 2 and isinstance(args[1], str):
        return f"{args[1]} ({args[0]})"
    return str(orig) or type(orig).__name__
