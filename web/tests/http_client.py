"""The tests' HTTP client: one request on a fresh connection, read in full and timed."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit


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
        assert isinstance(value, int)
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
    url = urlsplit(base)
    started = time.monotonic()
    conn = http.client.HTTPConnection(
        url.hostname or "127.0.0.1",
        url.port,
        timeout=timeout,
        source_address=(source, 0) if source else None,
    )
    try:
        chunked = body is not None and not isinstance(body, bytes)
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        content = response.read()
    finally:
        conn.close()
    return Reply(response.status, response.headers, content, time.monotonic() - started)
