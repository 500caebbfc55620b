"""The JSON API: GET reads without counting, POST counts, bad input is a 400 with a JSON error."""

import pytest
from quart import Quart
from quart.testing import QuartClient

from counter.config import Settings
from harness.provision import stored_count


async def test_get_reads_without_incrementing(
    app: Quart, client: QuartClient, settings: Settings
) -> None:
    await client.post("/api/counter")
    for _ in range(2):
        response = await client.get("/api/counter")
        assert response.status_code == 200
        assert await response.get_json() == {"count": 1}
    assert stored_count(settings) == 1


async def test_post_increments_and_returns_new_value(
    app: Quart, client: QuartClient, settings: Settings
) -> None:
    first = await client.post("/api/counter")
    second = await client.post("/api/counter", json={})
    assert (first.status_code, second.status_code) == (200, 200)
    assert await first.get_json() == {"count": 1}
    assert await second.get_json() == {"count": 2}
    assert stored_count(settings) == 2


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ("not json", {"Content-Type": "application/json"}),
        ("[1, 2]", {"Content-Type": "application/json"}),
        ('{"by": 5}', {"Content-Type": "application/json"}),
        ("count=1", {"Content-Type": "application/x-www-form-urlencoded"}),
        (b'{"\xff": 1}', {"Content-Type": "application/json"}),
        ("[" * 1000 + "]" * 1000, {"Content-Type": "application/json"}),
    ],
    ids=["malformed", "not-an-object", "unknown-field", "not-json-at-all", "not-utf8", "deep"],
)
async def test_bad_bodies_are_400_and_count_nothing(
    app: Quart, client: QuartClient, body: str | bytes, headers: dict[str, str], settings: Settings
) -> None:
    response = await client.post("/api/counter", data=body, headers=headers)
    assert response.status_code == 400
    payload = await response.get_json()
    assert payload["error"]["code"] == "bad_request"
    assert payload["error"]["message"]
    assert stored_count(settings) == 0


async def test_wrong_method_is_405_json(client: QuartClient) -> None:
    response = await client.delete("/api/counter")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert (await response.get_json())["error"]["code"] == "method_not_allowed"


async def test_unknown_api_path_is_404_json(client: QuartClient) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


async def test_unknown_page_is_404_html(client: QuartClient) -> None:
    response = await client.get("/nothing-here")
    assert response.status_code == 404
    html = await response.get_data(as_text=True)
    assert "Error 404" in html
    assert "Traceback" not in html


async def test_unknown_fields_are_named_but_not_all_echoed(client: QuartClient) -> None:
    body = {str(i): 0 for i in range(6000)}
    response = await client.post("/api/counter", json=body)
    assert response.status_code == 400
    assert len(await response.get_data()) < 300


async def test_redirects_are_relative_whatever_the_host(client: QuartClient) -> None:
    for host in ("evil.example", "a<b"):
        response = await client.get("/api//counter?x=1", headers={"Host": host})
        assert response.status_code == 308
        assert response.headers["Location"] == "/api/counter?x=1"
