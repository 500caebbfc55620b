"""Fail fast while the database is down: a circuit breaker per process.

Use it where a dead dependency would otherwise cost every request its full timeout. After a
failure, requests get a 503 at once for COOL_DOWN seconds; then one probe goes through, and its
success closes the circuit. It also summarises the outage in the log: one line when it opens, one
when it closes, instead of a warning per request.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("counter.db")
COOL_DOWN = 1.0


class CircuitBreaker:
    """Closed (serve), open (fail fast until the cool-down ends), half-open (one probe)."""

    def __init__(self, cool_down: float = COOL_DOWN) -> None:
        self.cool_down = cool_down
        self.opened_at: float | None = None
        self._retry_at = 0.0
        self._probing = False
        self.failed_fast = 0

    @property
    def state(self) -> str:
        """'closed', 'open' or 'half-open', for logs and metrics."""
        if self.opened_at is None:
            return "closed"
        return "half-open" if self._probing else "open"

    def allow(self) -> bool:
        """May this request use the database? While open, only one probe after each cool-down."""
        if self.opened_at is None:
            return True
        if self._probing or time.monotonic() < self._retry_at:
            self.failed_fast += 1
            return False
        self._probing = True
        return True

    def settle(self, answered: bool) -> None:
        """A request is done: close the circuit if the database answered; free the probe slot."""
        if answered:
            self.success()
        self._probing = False

    def success(self) -> None:
        """The database answered: close the circuit."""
        if self.opened_at is not None:
            log.warning("database is back after %.1f s; %d requests failed fast meanwhile",
                        time.monotonic() - self.opened_at, self.failed_fast)  # fmt: skip
        self.opened_at, self._probing, self.failed_fast = None, False, 0

    def failure(self, reason: str) -> None:
        """The database failed: open the circuit (again) for one cool-down."""
        now = time.monotonic()
        if self.opened_at is None:
            log.warning("database unavailable: %s; failing fast, one probe every %g s",
                        reason, self.cool_down)  # fmt: skip
            self.opened_at = now
        self._retry_at, self._probing = now + self.cool_down, False
