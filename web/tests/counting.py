"""Reading the stored count straight from the database, to check what the app said against it."""

from quart import Quart
from sqlalchemy import select

from counter.db import get_db
from counter.tables import counter


async def stored_count(app: Quart) -> int:
    """The counter row's value, read on a connection of its own."""
    async with app.app_context(), get_db().engine.connect() as conn:
        value = await conn.scalar(select(counter.c.count).where(counter.c.id == 1))
    assert value is not None, "the counter row is missing"
    return int(value)
