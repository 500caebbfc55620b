"""The one wait loop in web/ and db/: poll a condition until it holds, built on tenacity."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

T = TypeVar("T")


def poll_until(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.1,
    errors: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `condition` until it returns something truthy, and return that.

    Exceptions of the types in `errors` count as "not yet". After `timeout` seconds: TimeoutError
    naming `what` and the last result or exception.
    """
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda value: not value) | retry_if_exception_type(errors),
    )
    try:
        return retrying(condition)
    except RetryError as err:
        last = err.last_attempt
        seen = repr(last.exception()) if last.failed else repr(last.result())
        raise TimeoutError(f"{what}: not within {timeout:g} s (last: {seen})") from None
