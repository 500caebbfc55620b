"""Every SQL statement the app runs: connection first, plain values back, no transactions here."""

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from counter.tables import counter

COUNTER_ID = 1


class CounterMissingError(LookupError):
    """The counter row is gone: the database was not migrated (run `make migrate`)."""


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
        raise CounterMissingError("the counter row is missing: run the migrations")
    return int(result.lastrowid)


async def select_count(conn: AsyncConnection) -> int:
    """Read the counter without changing it."""
    value = await conn.scalar(select(counter.c.count).where(counter.c.id == COUNTER_ID))
    if value is None:
        raise CounterMissingError("the counter row is missing: run the migrations")
    return int(value)


async def select_one(conn: AsyncConnection) -> None:
    """The cheapest round trip, for the readiness probe."""
    await conn.execute(select(1))
