"""The tests' HTTP client: one request on a fresh connection, polling for a status, and a bounded
load that keeps every reply, so that the 200s can be checked against the stored count exactly."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness.poll import poll_until

# Never to reach a client: tracebacks, the driver's words, versions ("nginx/1.22.1", "Python/3.11").
LEAKS = ("traceback", 'file "', "sqlalchemy", "operationalerror", "can't connect", "errno")
VERSION = re.compile(
    r"(?i)(nginx|hypercorn|quart|werkzeug|python|uvloop|mysql|mariadb)[/ ]v?\d+\.\d+"
)


@dataclass(frozen=True)
class Reply:
    """What one request got back (status 0: no whole reply), how long it took, and when it began."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float
    started: float

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode(errors="replace")

    def json(self) -> dict[str, object]:
        """The body as a JSON object."""
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value

    @property
    def count(self) -> int:
        """The counter value of a successful API reply."""
        value = self.json()["count"]
        assert isinstance(value, int), self.body
        return value


def fetch(
    base: str,
    path: str,
    method: str = "GET",
    *,
    headers: dict[str, str] | None = None,
    body: bytes | Iterable[bytes] | None = None,
    source: str | None = None,
    timeout: float = 10.0,
) -> Reply:
    """`method path` on `base` (http://host:port), optionally from the loopback address `source`;
    an iterable body goes out chunked. Connection errors propagate."""
    source_address = (source, 0) if source else None
    netloc = urlsplit(base).netloc
    conn = http.client.HTTPConnection(netloc, timeout=timeout, source_address=source_address)
    started, clock = time.time(), time.monotonic()
    try:
        chunked = body is not None and not isinstance(body, bytes)
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        content = response.read()
    finally:
        conn.close()
    return Reply(response.status, response.headers, content, time.monotonic() - clock, started)


def assert_nothing_internal(text: str) -> None:
    """No traceback, database driver's words, or server or library version in what a client got."""
    assert not [leak for leak in LEAKS if leak in text.lower()], text
    assert not VERSION.search(text), text


def page_count(html: str) -> int:
    """The N in the page's 'Counter: N', as a reader sees it (tags stripped)."""
    match = re.search(r"Counter:\s*(\d+)", re.sub(r"<[^>]+>", "", html))
    assert match, f"no 'Counter: N' in the page: {html[:200]!r}"
    return int(match[1])


def assert_stored_once(values: list[int], before: int, stored: int, unanswered: int = 0) -> None:
    """Each value a 200 handed out is distinct and one of the `stored` counted after `before`; the
    count grew by one per 200, and by at most `unanswered` more (a failed request may count)."""
    assert len(values) == len(set(values)), "a value was handed out twice"
    assert all(before < value <= before + stored for value in values)
    figures = f"{len(values)} 200s, {unanswered} unanswered, stored +{stored}"
    assert len(values) <= stored <= len(values) + unanswered, figures


def wait_for_status(base: str, path: str, status: int, within: float, method: str = "GET") -> Reply:
    """Poll until `method path` answers `status`; that reply."""

    def answered() -> Reply | None:
        reply = fetch(base, path, method, timeout=within)
        return reply if reply.status == status else None

    waiting = f"{method} {path} answering {status}"
    return poll_until(answered, within, waiting, interval=0.05, errors=(OSError,))


class Load:
    """`connections` clients sending `method path` back to back (or `pause` s apart), at most
    `budget` requests in all, over kept-alive connections (or one per request); a socket silent
    for `timeout` s is an error. Unlike wrk it never abandons a request: stop() waits for each."""

    def __init__(
        self,
        base: str,
        connections: int,
        budget: int,
        method: str = "GET",
        path: str = "/",
        *,
        keepalive: bool = True,
        timeout: float = 15.0,
        pause: float = 0.0,
    ) -> None:
        self._netloc, self._timeout, self._pause = urlsplit(base).netloc, timeout, pause
        self._request = (method, path, None, {} if keepalive else {"Connection": "close"})
        self._budget, self._lock, self._stopping = budget, threading.Lock(), threading.Event()
        self.replies: list[Reply] = []
        self.failures: list[Reply] = []  # no whole reply (status 0): the headers, if they came
        self.errors: Counter[str] = Counter()
        self.lost = 0  # requests sent that got no answer (closed, timed out): each may have counted
        self._clients = [
            threading.Thread(target=self._client, daemon=True) for _ in range(connections)
        ]
        for client in self._clients:
            client.start()

    def _next(self) -> bool:
        """Whether to send another request: the budget's next one, unless stopping."""
        with self._lock:
            self._budget -= 1
            return self._budget >= 0 and not self._stopping.is_set()

    def _client(self) -> None:
        """One client's requests; http.client reopens the connection after a `close`."""
        conn = http.client.HTTPConnection(self._netloc, timeout=self._timeout)
        while self._next():
            started, clock = time.time(), time.monotonic()
            sent, headers = False, http.client.HTTPMessage()
            try:
                conn.request(*self._request)
                sent = True
                response = conn.getresponse()
                headers = response.headers
                body = response.read()
                seconds = time.monotonic() - clock
                self.replies.append(Reply(response.status, headers, body, seconds, started))
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                self.failures.append(Reply(0, headers, b"", time.monotonic() - clock, started))
                with self._lock:
                    self.errors[type(err).__name__] += 1
                    self.lost += sent
                time.sleep(0.01)
            time.sleep(self._pause)
        conn.close()

    def statuses(self) -> Counter[int]:
        """How many replies had each status."""
        return Counter(reply.status for reply in self.replies)

    def counted(self) -> list[int]:
        """The counter values handed out in 200 replies (POST /api/counter)."""
        return [reply.count for reply in self.replies if reply.status == 200]

    def wait_for(self, answers: int, within: float = 20.0) -> None:
        """Return once `answers` replies came back; TimeoutError after `within` s."""
        poll_until(lambda: len(self.replies) >= answers, within, f"{answers} answers", 0.01)

    def finish(self, within: float = 60.0) -> None:
        """Wait until the whole budget is spent (at most `within` s), then stop."""
        self._join(within)
        self.stop()

    def stop(self, within: float = 30.0) -> None:
        """Send nothing more, and wait until every request sent has its answer (or error)."""
        self._stopping.set()
        self._join(within)
        assert not any(client.is_alive() for client in self._clients), "a request is unanswered"

    def _join(self, within: float) -> None:
        """Wait at most `within` s in all for the clients to end."""
        deadline = time.monotonic() + within
        for client in self._clients:
            client.join(max(0.0, deadline - time.monotonic()))

    def assert_stored_once(self, stored: int, maybe: set[int]) -> None:
        """Each 200's value is distinct and in the `stored` count (from 0) once; statuses in
        `maybe`, and requests lost unanswered, may have counted; no others."""
        statuses = self.statuses()
        assert set(statuses) <= {200, *maybe}, statuses
        assert_stored_once(self.counted(), 0, stored, self.lost + sum(statuses[s] for s in maybe))
