"""The JSON API: GET reads without counting, POST counts, bad input is a 400 with a JSON error."""

import pytest
from quart.typing import TestClientProtocol as Client

from counter.config import Settings
from harness.provision import stored_count

JSON = "application/json"


async def test_post_counts_and_get_only_reads(client: Client, settings: Settings) -> None:
    first, second = await client.post("/api/counter"), await client.post("/api/counter", json={})
    assert (first.status_code, await first.get_json()) == (200, {"count": 1})
    assert (second.status_code, await second.get_json()) == (200, {"count": 2})
    for _ in range(2):
        response = await client.get("/api/counter")
        assert (response.status_code, await response.get_json()) == (200, {"count": 2})
    assert stored_count(settings) == 2


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("not json", JSON), ("[1, 2]", JSON), ('{"by": 5}', JSON), (b'{"\xff": 1}', JSON),
     ("count=1", "application/x-www-form-urlencoded"), ("[" * 1000 + "]" * 1000, JSON)],
    ids=["malformed", "not-an-object", "unknown-field", "not-utf8", "not-json-at-all", "deep"],
)  # fmt: skip
async def test_bad_bodies_are_400_and_count_nothing(
    client: Client, body: str | bytes, content_type: str, settings: Settings
) -> None:
    response = await client.post("/api/counter", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    payload = await response.get_json()
    assert payload["error"]["code"] == "bad_request"
    assert payload["error"]["message"]
    assert stored_count(settings) == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("DELETE", "/api/counter", 405, "method_not_allowed"), ("GET", "/api/x", 404, "not_found")],
)
async def test_api_errors_are_json(
    client: Client, method: str, path: str, status: int, code: str
) -> None:
    # Quart's TestClientProtocol gives open()'s json no default; its QuartClient does.
    response = await client.open(path, method=method)  # type: ignore[call-arg]
    assert response.status_code == status
    assert (await response.get_json())["error"]["code"] == code
    if status == 405:
        assert "POST" in response.headers["Allow"]


async def test_unknown_fields_are_named_but_not_all_echoed(client: Client) -> None:
    response = await client.post("/api/counter", json={str(i): 0 for i in range(6000)})
    assert response.status_code == 400
    assert len(await response.get_data()) < 300


async def test_redirects_are_relative_whatever_the_host(client: Client) -> None:
    for host in ("evil.example", "a<b"):
        response = await client.get("/api//counter?x=1", headers={"Host": host})
        assert response.status_code == 308
        assert response.headers["Location"] == "/api/counter?x=1"
