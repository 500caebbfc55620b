"""Load for fault tests: polling until a status comes back, and POST bursts from a thread pool."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from http_client import Reply, fetch


def wait_for_status(base: str, path: str, status: int, within: float, method: str = "GET") -> Reply:
    """Poll until `path` answers `status` and return that reply; AssertionError after `within`."""
    deadline = time.monotonic() + within
    last: Reply | Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = fetch(base, path, method, timeout=within)
            if last.status == status:
                return last
        except OSError as err:
            last = err
        time.sleep(0.05)
    raise AssertionError(f"{method} {path} did not answer {status} within {within} s: {last!r}")


class Burst:
    """`threads` clients POSTing to /api/counter back to back until `stop()`, each reply kept."""

    def __init__(self, base: str, threads: int, max_requests: int = 5000) -> None:
        self._base = base
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._budget = max_requests
        self.replies: list[Reply] = []
        self.errors: list[Exception] = []
        self._pool = ThreadPoolExecutor(threads)
        self._workers: list[Future[None]] = [self._pool.submit(self._run) for _ in range(threads)]

    def _run(self) -> None:
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

    def answered(self) -> int:
        """Replies so far, whatever their status."""
        with self._lock:
            return len(self.replies)

    def stop(self) -> None:
        """Let each client finish its current request, then end."""
        self._stopping.set()
        for worker in self._workers:
            worker.result(timeout=60)
        self._pool.shutdown()

    def statuses(self) -> dict[int, int]:
        """How many replies had each status."""
        counts: dict[int, int] = {}
        for reply in self.replies:
            counts[reply.status] = counts.get(reply.status, 0) + 1
        return counts

    def counted(self) -> list[int]:
        """The counter values handed out in 200 replies."""
        return [reply.count for reply in self.replies if reply.status == 200]
