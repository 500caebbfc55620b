"""What a database failure means: unavailable (a 503) or a bug, in the server's own words."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import exc

from counter import metrics
from counter.breaker import CircuitBreaker
from counter.compat import is_closed_transport
from counter.errors import DatabaseUnavailableError, SchemaNotReadyError

# What a lost, refused or timed-out database looks like from here; anything else is a bug (500).
UNAVAILABLE_ERRORS = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
    ConnectionError,
    asyncio.TimeoutError,
)
# No amount of waiting fixes these: no such database, access denied (1044, 1045, 1698 for a
# unix_socket-only account, 1227, 1370), unknown host (2005).
PERMANENT_ERROR_CODES = frozenset({1044, 1045, 1049, 1227, 1370, 1698, 2005})
NO_SUCH_TABLE = 1146


def is_unavailable(err: BaseException) -> bool:
    """True for a lost, refused or timed-out database, whichever event loop reported it."""
    return isinstance(err, UNAVAILABLE_ERRORS) or is_closed_transport(err)


def error_code(err: BaseException) -> int | None:
    """MySQL's error number, if the server or the driver gave one."""
    args: tuple[object, ...] = getattr(getattr(err, "orig", None) or err, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_permanent(err: BaseException) -> bool:
    """A refusal (bad password, no rights, unknown host) rather than a server still starting."""
    cause = getattr(getattr(err, "orig", None), "__cause__", None)
    # EAI_NONAME: the name does not exist; EAI_AGAIN (a DNS hiccup) is worth another try.
    unknown_host = isinstance(cause, socket.gaierror) and cause.errno == socket.EAI_NONAME
    return unknown_host or error_code(err) in PERMANENT_ERROR_CODES


def describe(err: BaseException, timeout: str = "no answer within DB_QUERY_TIMEOUT") -> str:
    """The server's or the driver's words, plus the socket's (refused, unknown host) if any."""
    if isinstance(err, TimeoutError):
        return timeout
    orig = getattr(err, "orig", None) or err
    args: tuple[object, ...] = getattr(orig, "args", ())
    reason = f"{args[1]} ({args[0]})" if len(args) == 2 and isinstance(args[1], str) else ""
    reason = reason or str(orig) or type(orig).__name__
    cause = orig.__cause__
    if isinstance(cause, socket.gaierror) and cause.strerror:
        reason = f"{reason}: {cause.strerror}"  # "Name or service not known"
    elif isinstance(cause, OSError) and cause.errno:
        reason = f"{reason}: {os.strerror(cause.errno)}"  # "Connection refused", not asyncio's
    return reason


@asynccontextmanager
async def unavailable_as_503(breaker: CircuitBreaker, time_limit: float) -> AsyncIterator[None]:
    """Bound the block by `time_limit` seconds; a lost, refused or slow database becomes a 503.

    While `breaker` is open the 503 comes at once. Cancelling mid-statement is safe: SQLAlchemy
    invalidates that one connection rather than returning it to the pool half-read.
    """
    if not breaker.allow():
        raise DatabaseUnavailableError()
    answered = False
    try:
        async with asyncio.timeout(time_limit):
            yield
        answered = True
    except Exception as err:
        if is_unavailable(err):
            metrics.count_db_error(err, error_code(err))
            breaker.failure(describe(err))
            raise DatabaseUnavailableError() from err
        answered = True  # the database answered; the error is ours
        if error_code(err) == NO_SUCH_TABLE:
            raise SchemaNotReadyError() from err
        raise
    finally:
        breaker.settle(answered)
