"""The one wait loop in web/ and db/: poll a condition until it holds, built on tenacity."""

from collections.abc import Callable
from typing import Literal, TypeVar

import tenacity as t

R = TypeVar("R")


def poll_until(
    condition: Callable[[], R | Literal[False] | None],
    timeout: float,
    what: str,
    interval: float = 0.1,
    errors: tuple[type[BaseException], ...] = (),
) -> R:
    """`condition()`'s first truthy result (`errors` count as "not yet"), or TimeoutError."""
    retry = t.retry_if_not_result(bool) | t.retry_if_exception_type(errors)
    poll = t.Retrying(stop=t.stop_after_delay(timeout), wait=t.wait_fixed(interval), retry=retry)
    try:
        result = poll(condition)
    except t.RetryError as err:
        last = err.last_attempt
        seen = repr(last.exception()) if last.failed else repr(last.result())
        raise TimeoutError(f"{what}: not within {timeout:g} s (last: {seen})") from None
    assert result  # tenacity retried every falsy one
    return result
