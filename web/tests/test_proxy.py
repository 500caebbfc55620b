"""Hypercorn behind the project's nginx config, both as real processes on free loopback ports."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from counter.config import Settings
from http_client import fetch
from nginx_runner import run_nginx
from servers import RunningServer, run_hypercorn

pytestmark = pytest.mark.processes

COUNTER = re.compile(r"Counter: (\d+)")


@pytest.fixture(scope="module")
def nginx(settings: Settings) -> Iterator[RunningServer]:
    """nginx on a free port in front of one Hypercorn worker on the test database."""
    with run_hypercorn(settings) as app, run_nginx(urlsplit(app.url).netloc) as proxy:
        yield proxy


def count_on_page(server: RunningServer) -> int:
    """GET / through nginx (which increments) and read the number off the page."""
    reply = fetch(server.url, "/")
    assert reply.status == 200, reply.text
    match = COUNTER.search(reply.text)
    assert match, reply.text
    return int(match[1])


def test_each_page_view_through_nginx_counts_once(nginx: RunningServer) -> None:
    first = count_on_page(nginx)
    assert count_on_page(nginx) == first + 1
