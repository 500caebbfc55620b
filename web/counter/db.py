"""The process's database engines: created when serving starts, disposed when it stops.

Two pools per process, over the same account:
- `transaction()`: the plain path for anything a view does. One transaction, committed at the end,
  rolled back on error. Copy this one for your own tables.
- `autocommit()`: for a single statement that is atomic on its own (the counter's UPDATE, a
  one-row read). No BEGIN/COMMIT/ROLLBACK round trips: on a hot path that halves the work.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from quart import Quart, current_app
from sqlalchemy import event, exc
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

from counter.config import Settings
from counter.errors import DatabaseUnavailableError

ENGINE_KEY = "counter.engine"
AUTOCOMMIT_ENGINE_KEY = "counter.autocommit_engine"
QUERY_TIMEOUT_KEY = "counter.db_query_timeout"

# What a lost, refused or timed-out database looks like from here; anything else is a bug (500).
UNAVAILABLE_ERRORS = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
    ConnectionError,
    asyncio.TimeoutError,
)
# uvloop's transports raise RuntimeError where plain asyncio's report a lost connection, and
# aiomysql passes them on (aio-libs/aiomysql#966): on a socket the server closed, and when the
# server resets a connection just opened (while it restarts).
CLOSED_TRANSPORT_MESSAGES = ("handler is closed", "Transport does not expose socket instance")


def is_unavailable(err: BaseException) -> bool:
    """True for a lost, refused or timed-out database, whichever event loop reported it."""
    if isinstance(err, UNAVAILABLE_ERRORS):
        return True
    return isinstance(err, RuntimeError) and _closed_transport(err)


def create_engine(settings: Settings, **options: Any) -> AsyncEngine:
    """A pooled engine for this process; each Hypercorn worker builds its own."""
    engine = create_async_engine(
        settings.database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=0,
        # A request waits this long for a free pooled connection before it gets a 503.
        pool_timeout=10,
        # Pings a connection before handing it out, so one the server dropped (restart,
        # wait_timeout) is replaced instead of failing a request.
        pool_pre_ping=True,
        pool_recycle=settings.db_pool_recycle,
        connect_args={"connect_timeout": settings.db_connect_timeout},
        **options,
    )
    tolerate_closed_transports(engine)
    return engine


def tolerate_closed_transports(engine: AsyncEngine) -> None:
    """Treat a socket the server closed (restart, wait_timeout) as a disconnect under uvloop too.

    Writing to such a socket raises RuntimeError("... the handler is closed") under uvloop, where
    plain asyncio reports a lost connection; SQLAlchemy only recognises the latter, so pre-ping
    would fail the request (500) instead of replacing the connection, and discarding it would log
    a traceback (aio-libs/aiomysql#966, sqlalchemy/sqlalchemy#8871).
    """
    dialect = engine.dialect
    ping, terminate = dialect.do_ping, dialect.do_terminate

    def do_ping(dbapi_connection: DBAPIConnection) -> bool:
        try:
            return ping(dbapi_connection)
        except RuntimeError as err:
            if not _closed_transport(err):
                raise
            return False  # the pool replaces this connection, as for any failed pre-ping

    def do_terminate(dbapi_connection: DBAPIConnection) -> None:
        try:
            terminate(dbapi_connection)
        except RuntimeError as err:
            if not _closed_transport(err):
                raise
            dbapi_connection.driver_connection.close()  # no goodbye on a closed socket

    dialect.do_ping = do_ping  # type: ignore[method-assign]
    dialect.do_terminate = do_terminate  # type: ignore[method-assign]


def _closed_transport(err: RuntimeError) -> bool:
    return any(message in str(err) for message in CLOSED_TRANSPORT_MESSAGES)


def create_transactional_engine(settings: Settings) -> AsyncEngine:
    """The plain path's engine; a connection going back to the pool is rolled back only if needed.

    By default the pool sends ROLLBACK on every return, even right after COMMIT: one round trip
    in three on a simple read. The server reports whether a transaction is open in every reply,
    so we ask the driver instead ("Using the pool reset event" in SQLAlchemy's pooling docs).
    """
    engine = create_engine(settings, pool_reset_on_return=None)
    event.listen(engine.sync_engine, "reset", _rollback_if_in_transaction)
    return engine


def _rollback_if_in_transaction(
    dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    if record.driver_connection is None or record.driver_connection.get_transaction_status():
        dbapi_connection.rollback()


def create_autocommit_engine(settings: Settings) -> AsyncEngine:
    """An engine whose statements commit themselves; returning a connection costs no ROLLBACK.

    skip_autocommit_rollback: https://docs.sqlalchemy.org/en/20/core/connections.html
    #dbapi-autocommit-skip-rollback
    """
    return create_engine(settings, isolation_level="AUTOCOMMIT", skip_autocommit_rollback=True)


def init_app(app: Quart, settings: Settings) -> None:
    """Open the engines in before_serving and dispose of them in after_serving."""

    app.extensions[QUERY_TIMEOUT_KEY] = settings.db_query_timeout

    @app.before_serving
    async def open_engines() -> None:
        app.extensions[ENGINE_KEY] = create_transactional_engine(settings)
        app.extensions[AUTOCOMMIT_ENGINE_KEY] = create_autocommit_engine(settings)

    @app.after_serving
    async def dispose_engines() -> None:
        for key in (ENGINE_KEY, AUTOCOMMIT_ENGINE_KEY):
            engine: AsyncEngine = app.extensions.pop(key)
            await engine.dispose()


def get_engine() -> AsyncEngine:
    """The serving app's transactional engine."""
    engine: AsyncEngine = current_app.extensions[ENGINE_KEY]
    return engine


def get_autocommit_engine() -> AsyncEngine:
    """The serving app's autocommit engine."""
    engine: AsyncEngine = current_app.extensions[AUTOCOMMIT_ENGINE_KEY]
    return engine


@asynccontextmanager
async def transaction() -> AsyncIterator[AsyncConnection]:
    """One pooled connection in one transaction; an unreachable database becomes a 503."""
    async with unavailable_as_503(), get_engine().begin() as conn:
        yield conn


@asynccontextmanager
async def autocommit() -> AsyncIterator[AsyncConnection]:
    """One pooled connection where each statement commits by itself; for single statements."""
    async with unavailable_as_503(), get_autocommit_engine().connect() as conn:
        yield conn


@asynccontextmanager
async def unavailable_as_503() -> AsyncIterator[None]:
    """Bound the block by DB_QUERY_TIMEOUT; a lost, refused or slow database becomes a 503.

    A server that accepts but never answers would otherwise hold the request (and its pooled
    connection) forever: the driver has no read timeout. Cancelling mid-statement is safe here:
    SQLAlchemy treats a cancellation as a disconnect and invalidates that one connection instead
    of returning it to the pool half-read (`Connection._handle_dbapi_exception`,
    `util.is_exit_exception`); tests/test_faults_outage.py checks it against a frozen server.
    """
    try:
        async with asyncio.timeout(current_app.extensions.get(QUERY_TIMEOUT_KEY)):
            yield
    except Exception as err:
        if not is_unavailable(err):
            raise
        current_app.logger.warning("database unavailable: %s", describe(err))
        raise DatabaseUnavailableError() from err


def describe(err: BaseException, timeout: str = "no answer within DB_QUERY_TIMEOUT") -> str:
    """The server's or the driver's words, plus the socket's (refused, unknown host) if any."""
    if isinstance(err, TimeoutError):
        return timeout
    orig = getattr(err, "orig", None) or err
    args: tuple[object, ...] = getattr(orig, "args", ())
    if len(args) == 2 and isinstance(args[1], str):
        reason = f"{args[1]} ({args[0]})"
    else:
        reason = str(orig) or type(orig).__name__
    cause = orig.__cause__
    if isinstance(cause, socket.gaierror) and cause.strerror:
        reason = f"{reason}: {cause.strerror}"  # "Name or service not known"
    elif isinstance(cause, OSError) and cause.errno:
        reason = f"{reason}: {os.strerror(cause.errno)}"  # "Connection refused", not asyncio's
    return reason
