"""Every SQL statement the app runs: connection first, plain values back, no transactions here."""

from sqlalchemy import Connection, func, insert, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from counter.errors import SchemaNotReadyError
from counter.tables import counter

COUNTER_ID = 1


async def increment_counter(conn: AsyncConnection, by: int = 1) -> int:
    """Add `by` to the counter atomically and return the new value, in one round trip.

    LAST_INSERT_ID(expr) stores the new value in the connection's session, and MySQL sends it back
    in the UPDATE's OK packet, so no SELECT follows and no concurrent update can slip in between.
    """
    result = await conn.execute(
        update(counter)
        .where(counter.c.id == COUNTER_ID)
        .values(count=func.last_insert_id(counter.c.count + by))
    )
    if result.rowcount != 1:
        raise SchemaNotReadyError()
    return int(result.lastrowid)


async def select_count(conn: AsyncConnection) -> int:
    """Read the counter without changing it."""
    value = await conn.scalar(select(counter.c.count).where(counter.c.id == COUNTER_ID))
    if value is None:
        raise SchemaNotReadyError()
    return int(value)


async def select_schema_revision(conn: AsyncConnection) -> str | None:
    """The Alembic revision the database is at; None before the first migration."""
    if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
        return None
    revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    return None if revision is None else str(revision)


def insert_missing_counter_row(conn: Connection) -> None:
    """Put the counter row back if it was deleted (migrations/env.py runs this after upgrades)."""
    if inspect(conn).has_table(counter.name):
        conn.execute(insert(counter).prefix_with("IGNORE").values(id=COUNTER_ID, count=0))
