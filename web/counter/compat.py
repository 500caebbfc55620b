"""Workaround: uvloop's closed-socket RuntimeErrors count as lost connections for aiomysql.

Remove this module when aiomysql reports them as connection errors (aio-libs/aiomysql#966);
SQLAlchemy then recognises the disconnect itself (sqlalchemy/sqlalchemy#8871).
"""

from __future__ import annotations

from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine

# What uvloop says on a socket the server closed, and on one reset while the server restarts.
CLOSED_TRANSPORT_MESSAGES = ("handler is closed", "Transport does not expose socket instance")


def is_closed_transport(err: BaseException) -> bool:
    """True for uvloop's RuntimeError about a socket that is already gone."""
    return isinstance(err, RuntimeError) and any(m in str(err) for m in CLOSED_TRANSPORT_MESSAGES)


def tolerate_closed_transports(engine: AsyncEngine) -> None:
    """Make pre-ping replace such a connection, and discarding it quiet, as for plain asyncio."""
    dialect = engine.dialect
    ping, terminate = dialect.do_ping, dialect.do_terminate

    def do_ping(dbapi_connection: DBAPIConnection) -> bool:
        try:
            return ping(dbapi_connection)
        except RuntimeError as err:
            if not is_closed_transport(err):
                raise
            return False  # the pool replaces this connection, as for any failed pre-ping

    def do_terminate(dbapi_connection: DBAPIConnection) -> None:
        try:
            terminate(dbapi_connection)
        except RuntimeError as err:
            if not is_closed_transport(err):
                raise
            dbapi_connection.driver_connection.close()  # no goodbye on a closed socket

    dialect.do_ping = do_ping  # type: ignore[method-assign]
    dialect.do_terminate = do_terminate  # type: ignore[method-assign]
