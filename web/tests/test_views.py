"""The page: each GET counts once and shows the new total; HEAD only reads; no cache keeps it."""

from quart.typing import TestClientProtocol as Client

from counter.config import Settings
from harness.provision import stored_count
from http_client import page_count


async def test_each_load_shows_the_next_number_and_head_counts_nothing(
    client: Client, settings: Settings
) -> None:
    first = await client.get("/")
    assert first.status_code == 200
    assert first.content_type == "text/html; charset=utf-8"
    assert first.headers["Cache-Control"] == "no-store"
    assert page_count(await first.get_data(as_text=True)) == 1
    assert (await client.head("/")).status_code == 200
    assert stored_count(settings) == 1
    second = await client.get("/")
    assert page_count(await second.get_data(as_text=True)) == 2
    assert stored_count(settings) == 2
