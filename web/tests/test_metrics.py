"""Prometheus metrics: what /metrics says, that nginx hides it, and a real Prometheus reading it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tempfile
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart
from quart.testing import QuartClient

from counter import create_app
from counter.config import Settings
from counter.db import get_db
from harness.poll import poll_until
from harness.servers import Server, run_hypercorn, run_nginx, run_server
from harness.tools import free_port, require_tool
from http_client import fetch, wait_for_status

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
LOAD = 300
# The README's three queries ("Observing it"): each must give an answer on real data.
README_QUERIES = {
    "request rate": "sum by (route) (rate(http_requests_total[5m]))",
    "p99 latency": "histogram_quantile(0.99, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{route="/"}[5m])))',
    "5xx ratio": '(sum(rate(http_requests_total{status=~"5.."}[5m])) or vector(0)) '
    "/ sum(rate(http_requests_total[5m]))",
}


def parse(text: str) -> Samples:
    """Prometheus text format as {(sample name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: QuartClient) -> Samples:
    """GET /metrics from the app itself."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return parse(await response.get_data(as_text=True))


def requests_total(route: str, status: str, method: str = "GET") -> float:
    """This process's count of answered requests for one URL rule and status."""
    labels = {"route": route, "method": method, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


async def test_requests_are_counted_by_url_rule_not_raw_path(client: QuartClient) -> None:
    before = requests_total("/api/counter", "200"), requests_total("unmatched", "404")
    await client.get("/api/counter")
    await client.get("/api/counter")
    await client.get("/no/such/page/42")
    after = requests_total("/api/counter", "200"), requests_total("unmatched", "404")
    assert (after[0] - before[0], after[1] - before[1]) == (2, 1)
    samples = await scrape(client)
    assert not [key for key in samples if ("route", "/no/such/page/42") in key[1]]
    latency = ("http_request_duration_seconds_count", frozenset({("route", "/api/counter")}))
    assert samples[latency] >= 2


async def test_a_made_up_method_adds_no_series(client: QuartClient) -> None:
    before = requests_total("unmatched", "405", method="other")  # routing failed: no rule
    response = await client.open("/api/counter", method="FROBNICATE")
    assert response.status_code == 405
    assert requests_total("unmatched", "405", method="other") - before == 1
    assert requests_total("unmatched", "405", method="FROBNICATE") == 0


async def test_pool_in_use_is_each_apps_own(app: Quart, settings: Settings) -> None:
    other = create_app(settings)  # a second serving app in this process: one registry for both
    async with other.test_app(), app.app_context(), get_db().engine.connect():
        mine, theirs = await scrape(app.test_client()), await scrape(other.test_client())
    in_use = "db_pool_connections_in_use"
    assert mine[(in_use, frozenset({("pool", "transaction")}))] == 1
    assert theirs[(in_use, frozenset({("pool", "transaction")}))] == 0
    assert mine[(in_use, frozenset({("pool", "counter")}))] == 0
    closed = ("db_circuit_breaker_state", frozenset({("state", "closed")}))
    assert mine[closed] == theirs[closed] == 1


async def test_database_errors_by_kind_and_the_open_breaker(settings: Settings) -> None:
    def refused() -> float:
        return REGISTRY.get_sample_value("db_errors_total", {"kind": "2003"}) or 0.0

    before = refused()
    down = create_app(dataclasses.replace(settings, db_port=free_port()))  # nothing listens
    async with down.test_app():
        assert (await down.test_client().get("/")).status_code == 503
        samples = await scrape(down.test_client())
    assert refused() - before == 1  # MySQL's 2003: can't connect
    assert samples[("db_circuit_breaker_state", frozenset({("state", "open")}))] == 1


async def test_batch_sizes_add_up_to_the_increments(client: QuartClient) -> None:
    def batches() -> tuple[float, float]:
        count = REGISTRY.get_sample_value("counter_batch_size_count") or 0.0
        return count, REGISTRY.get_sample_value("counter_batch_size_sum") or 0.0

    before = batches()
    replies = await asyncio.gather(*(client.post("/api/counter") for _ in range(20)))
    assert {reply.status_code for reply in replies} == {200}
    count, total = (now - then for now, then in zip(batches(), before, strict=True))
    assert total == 20
    assert 1 <= count <= 20


# --- The real processes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web(settings: Settings) -> Iterator[Server]:
    """The app as production runs it (hypercorn_conf.py, manage:app)."""
    with run_hypercorn(settings) as server:
        yield server


@pytest.mark.processes
def test_nginx_hides_metrics_that_the_app_serves(web: Server) -> None:
    assert "http_requests_total" in fetch(web.url, "/metrics").text
    with run_nginx([urlsplit(web.url).netloc]) as proxy:
        # nginx matches locations on the normalised path: these are all /metrics to it.
        for path in ("/metrics", "//metrics", "/%6Detrics", "/metrics?format=text", "/./metrics"):
            reply = fetch(proxy.url, path)
            assert reply.status == 404, path
            assert "http_requests_total" not in reply.text


def query_series(base: str, promql: str) -> list[tuple[dict[str, str], float]]:
    """An instant query through Prometheus's HTTP API: each series' labels and value."""
    reply = fetch(base, "/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    body = reply.json()
    assert body["status"] == "success", body
    data = body["data"]
    assert isinstance(data, dict)
    return [(series["metric"], float(series["value"][1])) for series in data["result"]]


def query(base: str, promql: str) -> list[float]:
    """An instant query's values."""
    return [value for _, value in query_series(base, promql)]


@contextmanager
def run_prometheus(target: str) -> Iterator[str]:
    """A real Prometheus scraping http://`target`/metrics every second, once it has; its URL."""
    prometheus = require_tool("prometheus")
    port = free_port()
    scrape = {"job_name": "counter", "scrape_interval": "1s", "scrape_timeout": "1s",
              "static_configs": [{"targets": [target]}]}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="prometheus-") as tmp:
        config = Path(tmp, "prometheus.yml")
        config.write_text(json.dumps({"scrape_configs": [scrape]}))  # JSON is YAML
        command = [
            prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp}/data",
            f"--web.listen-address=127.0.0.1:{port}",
        ]  # fmt: skip
        with run_server(command, port, {}, Path(tmp)) as server:
            wait_for_status(server.url, "/-/ready", 200, 30)
            poll_until(lambda: query(server.url, 'up{job="counter"}') == [1.0], 30, "a scrape")
            yield server.url


def seen(prometheus: str, promql: str, value: float) -> None:
    """Wait until Prometheus's latest scrape gives `promql` exactly `value`."""
    poll_until(lambda: query(prometheus, promql) == [value], 15, f"{promql} == {value}")


@pytest.mark.processes
def test_a_real_prometheus_counts_exactly_the_load(settings: Settings) -> None:
    visits = 'http_requests_total{route="/",method="GET",status="200"}'
    with run_hypercorn(settings) as web, run_prometheus(urlsplit(web.url).netloc) as prometheus:
        assert query(prometheus, visits) == []  # scraped, and no page view yet
        with ThreadPoolExecutor(8) as pool:
            # In two halves, each seen by a scrape: the rate() queries need two samples.
            for done in (LOAD // 2, LOAD):
                statuses = pool.map(lambda _: fetch(web.url, "/").status, range(LOAD // 2))
                assert set(statuses) == {200}
                seen(prometheus, visits, done)
        # Every page view went out in exactly one UPDATE batch.
        assert query(prometheus, "sum(counter_batch_size_sum)") == [LOAD]
        assert len(query(prometheus, "db_pool_connections_in_use")) == 2
        assert query(prometheus, 'db_circuit_breaker_state{state="closed"}') == [1]
        answers = {name: query_series(prometheus, q) for name, q in README_QUERIES.items()}
    rates = {labels["route"]: value for labels, value in answers["request rate"]}
    assert rates["/"] > 0, answers
    [(_, p99)] = answers["p99 latency"]
    assert 0 < p99 <= 10, answers
    assert [value for _, value in answers["5xx ratio"]] == [0], answers
