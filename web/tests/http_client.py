"""The tests' HTTP client: one request on a fresh connection, polling for a status, and a bounded
load that keeps every reply, so the 200s can be compared with the stored count exactly; the page's
number, and that comparison."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
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
    return poll_until(
        lambda: (reply := fetch(base, path, method, timeout=within)).status == status and reply,
        within, f"{method} {path} answering {status}", interval=0.05, errors=(OSError,),
    )  # fmt: skip


async def read_reply(reader: asyncio.StreamReader, started: float) -> Reply:
    """One whole HTTP/1.1 response (Content-Length or chunked) from `reader`."""
    status_line, _, fields = (await reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
    headers = http.client.parse_headers(io.BytesIO(fields))
    body = b""
    if "chunked" in headers.get("Transfer-Encoding", ""):
        while size := int((await reader.readline()).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readline()
    else:
        body = await reader.readexactly(int(headers.get("Content-Length", "0")))
    return Reply(int(status_line.split()[1]), headers, body, time.monotonic() - started)


class Load:
    """`connections` clients sending `method path` back to back (or `pause` s apart), at most
    `budget` requests in all, over kept-alive connections (or one per request); a reply slower
    than `timeout` is an error.
    Unlike wrk it never abandons a request: stop() waits for the answer to each one sent."""

    def __init__(
        self, base: str, connections: int, budget: int, method: str = "GET", path: str = "/",
        *, keepalive: bool = True, timeout: float = 15.0, pause: float = 0.0,
    ) -> None:  # fmt: skip
        url = urlsplit(base)
        self._address = (url.hostname or "127.0.0.1", url.port or 80)
        close = "" if keepalive else "Connection: close\r\n"
        head = f"{method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: 0\r\n{close}\r\n"
        self._request, self._keepalive = head.encode(), keepalive
        self._budget, self._timeout, self._pause = budget, timeout, pause
        self._stopping = threading.Event()
        self.replies: list[Reply] = []
        self.errors: Counter[str] = Counter()
        self.lost = 0  # requests sent that got no answer (closed, timed out): each may have counted
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(connections),))
        self._thread.start()

    async def _run(self, connections: int) -> None:
        await asyncio.gather(*(self._client() for _ in range(connections)))

    async def _client(self) -> None:
        writer: asyncio.StreamWriter | None = None
        while not self._stopping.is_set() and self._budget > 0:
            self._budget -= 1  # one event loop: no lock needed
            started, close, sent = time.monotonic(), not self._keepalive, False
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(*self._address)
                writer.write(self._request)
                sent = True
                reply = await asyncio.wait_for(read_reply(reader, started), self._timeout)
                self.replies.append(reply)
                close = close or "close" in reply.headers.get("Connection", "").lower()
                await asyncio.sleep(self._pause)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as err:
                self.errors[type(err).__name__] += 1
                self.lost += sent
                close = True
                await asyncio.sleep(0.01)
            if close and writer is not None:
                writer.close()
                writer = None
        if writer is not None:
            writer.close()

    def statuses(self) -> Counter[int]:
        """How many replies had each status."""
        return Counter(reply.status for reply in self.replies)

    def counted(self) -> list[int]:
        """The counter values handed out in 200 replies (POST /api/counter)."""
        return [reply.count for reply in self.replies if reply.status == 200]

    def wait_for(self, answers: int, within: float = 20.0) -> None:
        """Return once `answers` replies came back; TimeoutError after `within` s."""

        def enough() -> bool:
            done = len(self.replies) >= answers
            assert done or self._thread.is_alive(), "the load ended early"
            return done

        poll_until(enough, within, f"{answers} answers", interval=0.01)

    def stop(self, within: float = 30.0) -> None:
        """Send nothing more, and wait until every request sent has its answer (or error)."""
        self._stopping.set()
        self._thread.join(within)
        assert not self._thread.is_alive(), "a request was still unanswered"

    def finish(self, within: float = 60.0) -> None:
        """Wait until the whole budget is spent."""
        self._thread.join(within)
        self.stop()

    def assert_stored_once(self, stored: int, maybe: set[int]) -> None:
        """Each 200's value is distinct and in the `stored` count (from 0) once; statuses in
        `maybe`, and requests lost unanswered, may have counted; no others."""
        statuses = self.statuses()
        assert set(statuses) <= {200, *maybe}, statuses
        assert_stored_once(self.counted(), 0, stored, self.lost + sum(statuses[s] for s in maybe))
