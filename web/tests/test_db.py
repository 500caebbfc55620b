"""The engines' contracts: transactions roll back on error, and no pooled connection leaks one."""

import pytest
from quart import Quart
from sqlalchemy import update

from counter.db import autocommit, get_engine, transaction
from counter.queries import increment_counter, select_count
from counter.tables import counter
from counting import stored_count


class Boom(Exception):
    """A failure in the middle of a view's work."""


async def increment_then_fail() -> None:
    async with transaction() as conn:
        await increment_counter(conn)
        raise Boom


async def test_transaction_rolls_back_when_the_block_fails(app: Quart) -> None:
    async with app.app_context():
        with pytest.raises(Boom):
            await increment_then_fail()
        assert await stored_count(app) == 0


async def test_connection_returned_mid_transaction_is_rolled_back(app: Quart) -> None:
    async with app.app_context():
        # Left without commit or rollback: the pool must not hand it out still in the transaction.
        conn = await get_engine().connect()
        await conn.execute(update(counter).values(count=41))
        await conn.close()
        async with transaction() as again:
            assert await select_count(again) == 0
        assert await stored_count(app) == 0


async def test_autocommit_statements_are_durable_at_once(app: Quart) -> None:
    async with app.app_context(), autocommit() as conn:
        assert await increment_counter(conn, by=3) == 3
        # Visible to another connection before this one is even returned.
        assert await stored_count(app) == 3
