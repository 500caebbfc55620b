"""`transaction()`: committed at the end, rolled back on error."""

import pytest
from quart import Quart

from counter.config import Settings
from counter.db import transaction
from counter.queries import increment_counter
from harness.provision import stored_count


async def test_transaction_commits_at_the_end_and_rolls_back_on_error(
    app: Quart, settings: Settings
) -> None:
    async with app.app_context():
        async with transaction() as conn:
            assert await increment_counter(conn, by=3) == 3
        assert stored_count(settings) == 3
        with pytest.raises(LookupError):  # noqa: PT012 (raised inside the block under test)
            async with transaction() as conn:
                await increment_counter(conn)
                raise LookupError  # a failure in the middle of a view's work
        assert stored_count(settings) == 3
