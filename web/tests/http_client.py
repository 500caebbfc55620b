"""The tests' HTTP client: one request on a fresh connection, read in full and timed; polling for
a status; and bursts of POSTs from a thread pool."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness.poll import poll_until


@dataclass(frozen=True)
class Reply:
    """What one request got back, and how long it took."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float

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
    """`method path` on `base` (http://host:port), optionally from the loopback address `source`.

    An iterable body goes out chunked, with no Content-Length. Connection errors propagate.
    """
    url, started = urlsplit(base), time.monotonic()
    conn = http.client.HTTPConnection(
        url.hostname or "127.0.0.1", url.port, timeout=timeout,
        source_address=(source, 0) if source else None,
    )  # fmt: skip
    try:
        chunked = body is not None and not isinstance(body, bytes)
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        content = response.read()
    finally:
        conn.close()
    return Reply(response.status, response.headers, content, time.monotonic() - started)


def wait_for_status(base: str, path: str, status: int, within: float, method: str = "GET") -> Reply:
    """Poll until `method path` answers `status`; that reply."""
    return poll_until(
        lambda: (reply := fetch(base, path, method, timeout=within)).status == status and reply,
        within, f"{method} {path} answering {status}", interval=0.05, errors=(OSError,),
    )  # fmt: skip


class Burst:
    """`threads` clients POSTing /api/counter back to back until `stop()`; every reply kept."""

    def __init__(self, base: str, threads: int, max_requests: int = 5000) -> None:
        self.replies: list[Reply] = []
        self.errors: list[OSError] = []
        self._base, self._budget = base, max_requests
        self._stopping, self._lock = threading.Event(), threading.Lock()
        self._pool = ThreadPoolExecutor(threads)
        self._clients = [self._pool.submit(self._client) for _ in range(threads)]

    def _client(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if self._budget == 0:
                    return
                self._budget -= 1
            try:
                reply = fetch(self._base, "/api/counter", "POST")
            except OSError as err:
                with self._lock:
                    self.errors.append(err)
                time.sleep(0.01)
                continue
            with self._lock:
                self.replies.append(reply)

    def wait_for_replies(self, at_least: int) -> None:
        """Let the burst get going."""
        poll_until(lambda: len(self.replies) >= at_least, 10, "the burst", interval=0.01)

    def stop(self) -> None:
        """Let each client finish its current request, then end."""
        self._stopping.set()
        for client in self._clients:
            client.result(timeout=60)
        self._pool.shutdown()

    def statuses(self) -> Counter[int]:
        """How many replies had each status."""
        return Counter(reply.status for reply in self.replies)

    def counted(self) -> list[int]:
        """The counter values handed out in 200 replies."""
        return [reply.count for reply in self.replies if reply.status == 200]
