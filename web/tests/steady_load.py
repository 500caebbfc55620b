"""A steady, bounded load of counting requests (GET / and POST /api/counter), every reply kept."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

PAGE_NUMBER = re.compile(rb"Counter: <strong>(\d+)</strong>")
PATHS = (("GET", "/"), ("POST", "/api/counter"))


@dataclass(frozen=True)
class Outcome:
    """One request: when it ran (wall clock, as Docker's timestamps), what came back (status 0: no
    whole reply), the number in it and nginx's request ID."""

    started: float
    ended: float
    path: str
    status: int
    number: int | None
    request_id: str
    error: str = ""


def send(base: str, method: str, path: str, timeout: float) -> Outcome:
    """One counting request on a fresh connection; no answer, or half of one, is an Outcome too."""
    url, started = urlsplit(base), time.time()
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    status, request_id = 0, ""
    try:
        conn.request(method, path)
        response = conn.getresponse()
        status, request_id = response.status, response.headers.get("X-Request-ID", "")
        body = response.read()
    except (OSError, http.client.HTTPException) as err:
        # A reply cut short (the app died mid-body) is a failure whatever its status line said.
        return Outcome(started, time.time(), path, 0, None, request_id, repr(err))
    finally:
        conn.close()
    number = None
    if status == 200:
        match = PAGE_NUMBER.search(body) if method == "GET" else None
        number = int(match[1]) if match else json.loads(body)["count"] if method == "POST" else None
    return Outcome(started, time.time(), path, status, number, request_id)


class SteadyLoad:
    """`clients` threads, each pacing itself to rate/clients requests a second, alternating GET /
    and POST /api/counter, until stop() or `max_seconds` (the hard bound) have passed."""

    def __init__(
        self, base: str, rate: float, clients: int, max_seconds: float, timeout: float = 10.0
    ) -> None:
        self.outcomes: list[Outcome] = []
        self._base, self._interval, self._timeout = base, clients / rate, timeout
        self._deadline = time.monotonic() + max_seconds
        self._stopping, self._lock = threading.Event(), threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(i,)) for i in range(clients)]
        self.started = self.ended = time.time()
        for thread in self._threads:
            thread.start()

    def _client(self, index: int) -> None:
        next_at = time.monotonic() + self._interval * index / len(self._threads)
        sent = 0
        while not self._stopping.is_set() and time.monotonic() < self._deadline:
            # Behind schedule (a slow reply), send at once rather than in a burst later.
            next_at = max(next_at + self._interval, time.monotonic())
            self._stopping.wait(max(0.0, next_at - time.monotonic()))
            method, path = PATHS[(index + sent) % len(PATHS)]
            outcome = send(self._base, method, path, self._timeout)
            sent += 1
            with self._lock:
                self.outcomes.append(outcome)

    def stop(self) -> None:
        """Send nothing more, and wait for the replies to the requests already sent."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(self._timeout + 5)
        self.ended = time.time()

    def failures(self) -> list[Outcome]:
        """Every request that got no 2xx reply."""
        return [o for o in self.outcomes if not 200 <= o.status < 300]

    def numbers(self) -> list[int]:
        """The counter values handed out in 200 replies."""
        return [o.number for o in self.outcomes if o.status == 200 and o.number is not None]

    def rate(self) -> float:
        """Requests answered per second over the load's whole run."""
        return len(self.outcomes) / (self.ended - self.started)
