"""The page: each GET counts once, shows the new total, and agrees with the stored row."""

from quart.typing import TestClientProtocol as Client

from counter.config import Settings
from harness.provision import stored_count
from http_client import page_count


async def shown_count(client: Client) -> int:
    """Load the page; the count it shows."""
    response = await client.get("/")
    assert response.status_code == 200
    return page_count(await response.get_data(as_text=True))


async def test_each_load_shows_the_next_number(client: Client, settings: Settings) -> None:
    assert [await shown_count(client), await shown_count(client)] == [1, 2]
    assert stored_count(settings) == 2


async def test_page_is_html_and_never_cached(client: Client) -> None:
    response = await client.get("/")
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"


async def test_head_does_not_increment(client: Client, settings: Settings) -> None:
    await client.get("/")
    assert (await client.head("/")).status_code == 200
    assert stored_count(settings) == 1
    assert await shown_count(client) == 2
