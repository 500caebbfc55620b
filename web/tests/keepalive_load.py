"""Bounded GET load over kept-alive HTTP/1.1 connections, every response counted.

Unlike wrk, it never abandons a request: stop() lets each connection finish the one it sent, so
the number of 200s can be compared with the stored count exactly.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from urllib.parse import urlsplit

from harness.poll import poll_until


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """One response's status, and whether the server will close the connection after it."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower().split("\r\n")
    status = int(head[0].split()[1])
    headers = dict(line.split(":", 1) for line in head[1:] if ":" in line)
    if "chunked" in headers.get("transfer-encoding", ""):
        while size := int((await reader.readline()).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readline()
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, "close" in headers.get("connection", "")


class Load:
    """`connections` clients sending `GET path` back to back, at most `budget` requests in all;
    a reply that takes over `timeout` s counts as an error."""

    def __init__(
        self, base: str, connections: int, budget: int, path: str = "/", timeout: float = 15.0
    ) -> None:
        url = urlsplit(base)
        self._address = (url.hostname or "127.0.0.1", url.port or 80)
        self._request = f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()
        self._budget = budget
        self._timeout = timeout
        self._stopping = threading.Event()
        self.statuses: collections.Counter[int] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(connections),))
        self._thread.start()

    async def _run(self, connections: int) -> None:
        await asyncio.gather(*(self._client() for _ in range(connections)))

    async def _client(self) -> None:
        writer: asyncio.StreamWriter | None = None
        while not self._stopping.is_set() and self._budget > 0:
            self._budget -= 1  # one event loop: no lock needed
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(*self._address)
                writer.write(self._request)
                status, close = await asyncio.wait_for(read_reply(reader), self._timeout)
                self.statuses[status] += 1
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as err:
                self.errors[type(err).__name__] += 1
                close = True
                await asyncio.sleep(0.01)
            if close and writer is not None:
                writer.close()
                writer = None
        if writer is not None:
            writer.close()

    def answered(self) -> int:
        """Responses so far, whatever their status."""
        return sum(self.statuses.values())

    def wait_for(self, answers: int, within: float = 20.0) -> None:
        """Return once `answers` responses came back; TimeoutError after `within` s."""

        def enough() -> bool:
            assert self._thread.is_alive() or self.answered() >= answers, "the load ended early"
            return self.answered() >= answers

        poll_until(enough, within, f"{answers} answers", interval=0.02)

    def stop(self, within: float = 30.0) -> None:
        """Send nothing more, and wait until every request sent has its answer (or error)."""
        self._stopping.set()
        self._thread.join(within)
        assert not self._thread.is_alive(), "a request was still unanswered"

    def finish(self, within: float = 60.0) -> None:
        """Wait until the whole budget is spent."""
        self._thread.join(within)
        self.stop()
