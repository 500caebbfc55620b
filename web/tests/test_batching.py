"""The increment batcher: concurrent callers share UPDATEs, each still gets its own number."""

import asyncio

import pytest

from counter.batching import IncrementBatcher


class SlowCounter:
    """Stands in for the UPDATE's round trip: adds k after a pause, records each batch size."""

    def __init__(self, fail_first: bool = False) -> None:
        self.value = 0
        self.batches: list[int] = []
        self.fail_first = fail_first

    async def add(self, k: int) -> int:
        self.batches.append(k)
        await asyncio.sleep(0.01)
        if self.fail_first and len(self.batches) == 1:
            raise ConnectionError("database went away")
        self.value += k
        return self.value


async def test_lone_caller_goes_straight_through() -> None:
    counter = SlowCounter()
    batcher = IncrementBatcher(counter.add)
    assert await batcher.increment() == 1
    assert await batcher.increment() == 2
    assert counter.batches == [1, 1]


async def test_callers_arriving_during_a_flight_share_the_next_update() -> None:
    counter = SlowCounter()
    batcher = IncrementBatcher(counter.add)
    first = asyncio.ensure_future(batcher.increment())
    await asyncio.sleep(0.005)  # its UPDATE is now in flight
    values = await asyncio.gather(first, *(batcher.increment() for _ in range(49)))
    assert sorted(values) == list(range(1, 51))
    # The first caller flew alone; the 49 that queued behind it shared one UPDATE.
    assert counter.batches == [1, 49]


async def test_a_failed_update_fails_only_its_own_batch() -> None:
    counter = SlowCounter(fail_first=True)
    batcher = IncrementBatcher(counter.add)
    first = asyncio.ensure_future(batcher.increment())
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(batcher.increment()) for _ in range(3)]
    with pytest.raises(ConnectionError):
        await first
    assert sorted(await asyncio.gather(*rest)) == [1, 2, 3]
    assert counter.value == 3


async def test_callers_that_gave_up_before_their_batch_left_are_not_counted() -> None:
    counter = SlowCounter()
    batcher = IncrementBatcher(counter.add)
    first = asyncio.ensure_future(batcher.increment())
    await asyncio.sleep(0)
    quitter = asyncio.ensure_future(batcher.increment())
    stayer = asyncio.ensure_future(batcher.increment())
    await asyncio.sleep(0)
    quitter.cancel()
    assert (await first, await stayer) == (1, 2)
    assert counter.value == 2
