"""`transaction()`: committed at the end, rolled back on error, never leaked half-done."""

import pytest
from quart import Quart
from sqlalchemy import update

from counter.config import Settings
from counter.db import get_db, transaction
from counter.queries import increment_counter, select_count
from counter.tables import counter
from harness.provision import stored_count


async def test_transaction_commits_at_the_end(app: Quart, settings: Settings) -> None:
    async with app.app_context():
        async with transaction() as conn:
            assert await increment_counter(conn, by=3) == 3
        assert stored_count(settings) == 3


async def test_transaction_rolls_back_when_the_block_fails(app: Quart, settings: Settings) -> None:
    async with app.app_context():
        with pytest.raises(LookupError):  # noqa: PT012 (raised inside the block under test)
            async with transaction() as conn:
                await increment_counter(conn)
                raise LookupError  # a failure in the middle of a view's work
        assert stored_count(settings) == 0


async def test_connection_returned_mid_transaction_is_rolled_back(
    app: Quart, settings: Settings
) -> None:
    async with app.app_context():
        # Left without commit or rollback: the pool must not hand it out still in the transaction.
        conn = await get_db().engine.connect()
        await conn.execute(update(counter).values(count=41))
        await conn.close()
        async with transaction() as again:
            assert await select_count(again) == 0
        assert stored_count(settings) == 0
