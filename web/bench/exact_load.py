"""A bounded load whose every response is read: exactly N increments over C keep-alive connections.

wrk stops mid-flight, so a request it sent last may have counted on the server without its
response being read; this client never abandons one, so the stored count must move by exactly
the number of 2xx responses, each carrying a different number.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

COUNT = re.compile(rb'"count":\s*(\d+)')


@dataclass
class ExactResult:
    """What the server answered, request by request."""

    ok: int = 0
    failed: int = 0
    values: list[int] = field(default_factory=list)


async def _one_connection(host: str, port: int, path: str, n: int, result: ExactResult) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n\r\n").encode()
    try:
        for _ in range(n):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            body = await reader.readexactly(length)
            if 200 <= status < 300 and (match := COUNT.search(body)):
                result.ok += 1
                result.values.append(int(match.group(1)))
            else:
                result.failed += 1
    finally:
        writer.close()


async def _run(host: str, port: int, path: str, total: int, connections: int) -> ExactResult:
    result = ExactResult()
    shares = [
        total // connections + (1 if i < total % connections else 0) for i in range(connections)
    ]
    await asyncio.wait_for(
        asyncio.gather(*(_one_connection(host, port, path, n, result) for n in shares if n)),
        timeout=120,
    )
    return result


def exact_load(url: str, path: str, total: int, connections: int) -> ExactResult:
    """POST `path` `total` times over `connections` connections to `url` (http://host:port)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return asyncio.run(_run(host, int(port), path, total, connections))
