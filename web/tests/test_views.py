"""The page: each GET counts once, shows the new total, and agrees with the stored row."""

import re

from quart import Quart
from quart.testing import QuartClient

from counter.config import Settings
from harness.provision import stored_count


def shown_count(html: str) -> int:
    """The N in 'Counter: N' as a reader sees it (tags stripped)."""
    match = re.search(r"Counter:\s*(\d+)", re.sub(r"<[^>]+>", "", html))
    assert match, f"no 'Counter: N' in the page: {html[:200]!r}"
    return int(match.group(1))


async def test_first_request_shows_one_and_second_two(
    app: Quart, client: QuartClient, settings: Settings
) -> None:
    first = await client.get("/")
    assert first.status_code == 200
    assert shown_count(await first.get_data(as_text=True)) == 1
    second = await client.get("/")
    assert shown_count(await second.get_data(as_text=True)) == 2
    assert stored_count(settings) == 2


async def test_page_is_html_and_never_cached(client: QuartClient) -> None:
    response = await client.get("/")
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    html = await response.get_data(as_text=True)
    assert "<title>Counter: 1" in html
    assert "/static/style.css" in html


async def test_head_does_not_increment(app: Quart, client: QuartClient, settings: Settings) -> None:
    await client.get("/")
    head = await client.head("/")
    assert head.status_code == 200
    assert stored_count(settings) == 1
    assert shown_count(await (await client.get("/")).get_data(as_text=True)) == 2


async def test_stylesheet_is_served(client: QuartClient) -> None:
    response = await client.get("/static/style.css")
    assert response.status_code == 200
    assert response.content_type.startswith("text/css")
