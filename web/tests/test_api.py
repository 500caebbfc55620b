"""The JSON API: GET reads without counting, POST counts, bad input is a 400 with a JSON error."""

import json

import pytest
from quart.typing import TestClientProtocol as Client

from counter.config import Settings
from harness.provision import stored_count

JSON = "application/json"
BAD_BODIES = {
    "malformed": (JSON, "not json"),
    "not-an-object": (JSON, "[1, 2]"),
    "unknown-fields": (JSON, json.dumps({str(i): 0 for i in range(6000)})),
    "not-utf8": (JSON, b'{"\xff": 1}'),
    "deep": (JSON, "[" * 1000 + "]" * 1000),
    "not-json-at-all": ("application/x-www-form-urlencoded", "count=1"),
}


async def test_post_counts_and_get_only_reads(client: Client, settings: Settings) -> None:
    first, second = await client.post("/api/counter"), await client.post("/api/counter", json={})
    assert (first.status_code, await first.get_json()) == (200, {"count": 1})
    assert (second.status_code, await second.get_json()) == (200, {"count": 2})
    response = await client.get("/api/counter")
    assert (response.status_code, await response.get_json()) == (200, {"count": 2})
    assert stored_count(settings) == 2


@pytest.mark.parametrize("case", BAD_BODIES)
async def test_bad_bodies_are_a_short_400_and_count_nothing(
    client: Client, case: str, settings: Settings
) -> None:
    content_type, body = BAD_BODIES[case]
    response = await client.post("/api/counter", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    payload = await response.get_json()
    assert payload["error"]["code"] == "bad_request"
    assert payload["error"]["message"]
    assert len(await response.get_data()) < 300  # 6,000 unknown fields are not all echoed
    assert stored_count(settings) == 0


async def test_api_errors_are_json(client: Client) -> None:
    not_allowed, not_found = await client.delete("/api/counter"), await client.get("/api/x")
    assert not_allowed.status_code == 405
    assert "POST" in not_allowed.headers["Allow"]
    assert (await not_allowed.get_json())["error"]["code"] == "method_not_allowed"
    assert not_found.status_code == 404
    assert (await not_found.get_json())["error"]["code"] == "not_found"


async def test_redirects_are_relative_whatever_the_host(client: Client) -> None:
    for host in ("evil.example", "a<b"):
        response = await client.get("/api//counter?x=1", headers={"Host": host})
        assert response.status_code == 308
        assert response.headers["Location"] == "/api/counter?x=1"
