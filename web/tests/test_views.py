"""The page: a GET counts once and shows the new total, as HTML no cache may keep; HEAD only reads.
(Each load showing the next number: test_browser; each number stored once: test_faults_proxy.)"""

from quart.typing import TestClientProtocol as Client

from counter.config import Settings
from harness.provision import stored_count
from http_client import page_count


async def test_page_is_uncached_html_and_head_counts_nothing(
    client: Client, settings: Settings
) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert page_count(await response.get_data(as_text=True)) == 1
    assert (await client.head("/")).status_code == 200
    assert stored_count(settings) == 1
