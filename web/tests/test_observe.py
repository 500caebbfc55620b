"""Request IDs, logs and metrics: in the app, and on the real Hypercorn, nginx and Prometheus."""

import dataclasses
import io
import json
import logging
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from counter import create_app
from counter.config import Settings
from counter.db import get_db
from counter.observe import configure_logging
from harness import servers
from harness.poll import poll_until
from harness.servers import Nginx, Server, run_hypercorn, run_nginx, run_server
from harness.tools import free_port, require_tool
from http_client import fetch, wait_for_status

NGINX_ID = re.compile(r"[0-9a-f]{32}")
WRONG_PASSWORD = "Wr0ng-pw-7c1e9a-OBSERVE"  # distinctive: no log line may ever show it
LOAD = 300
# The README's three queries ("Observing it"): request rate, p99 latency, 5xx ratio.
README_QUERIES = (
    "sum by (route) (rate(http_requests_total[5m]))",
    'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{route="/"}[5m])))',  # noqa: E501
    '(sum(rate(http_requests_total{status=~"5.."}[5m])) or vector(0)) / sum(rate(http_requests_total[5m]))',  # noqa: E501
)


def production(settings: Settings, **changes: Any) -> Settings:
    """`settings` as production runs: a real secret key, LOG_REQUESTS at its default (off)."""
    defaults = {"environment": "production", "secret_key": secrets.token_urlsafe(32)}
    return dataclasses.replace(settings, **{**defaults, "log_requests": False, **changes})


@contextmanager
def captured_logs(settings: Settings) -> Iterator[io.StringIO]:
    """The app's logging for `settings`, into a buffer; the root logger is put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(settings, stream := io.StringIO())
    try:
        yield stream
    finally:
        root.handlers, root.level = handlers, level


def json_lines(text: str) -> list[dict[str, object]]:
    """Every line of `text` parsed as one JSON object (fails on a line that is not)."""
    return [json.loads(line) for line in text.splitlines()]


def parse(text: str) -> dict[str, float]:
    """Prometheus's text format as {'name{labels}': value}."""
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {name: float(value) for name, value in samples}


async def scrape(client: Client) -> dict[str, float]:
    """GET /metrics from the app itself."""
    response = await client.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return parse(await response.get_data(as_text=True))


@pytest.mark.parametrize("sent", [None, "lb-5f.2_a", "two words", 'quote"d', "x" * 129, "ünï", ""])
async def test_a_safe_sent_id_is_kept_any_other_replaced(client: Client, sent: str | None) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent}
    got = (await client.get("/healthz", headers=headers)).headers["X-Request-ID"]
    assert got == sent if sent == "lb-5f.2_a" else NGINX_ID.fullmatch(got)


async def test_secrets_are_masked_in_every_line_json_escaped_too(settings: Settings) -> None:
    masked = production(settings, db_password='pa"ss\\word-91f')  # JSON escapes " and \
    with captured_logs(masked) as stream:
        log = logging.getLogger("counter.test")
        log.warning("password %s, key %s", masked.db_password, masked.secret_key)
        try:
            raise RuntimeError(f"boom {masked.db_password}")
        except RuntimeError:
            log.exception("failed")
    warning, failure = json_lines(stream.getvalue())  # a traceback stays inside its JSON line
    assert warning["message"] == "password ***, key ***"
    assert "RuntimeError: boom ***" in str(failure["exc_info"])
    assert "word-91f" not in stream.getvalue()
    assert masked.secret_key not in stream.getvalue()


async def test_development_lines_are_readable(settings: Settings) -> None:
    app: Quart = create_app(settings)  # the fixture's settings are development ones
    with captured_logs(dataclasses.replace(settings, log_requests=True)) as stream:
        async with app.test_app():
            await app.test_client().get("/healthz", headers={"X-Request-ID": "dev-id-1"})
    line = next(line for line in stream.getvalue().splitlines() if "counter.access" in line)
    assert re.search(r" INFO counter\.access \[dev-id-1\] GET /healthz 200 \d+\.\d ms$", line)


async def test_series_are_per_url_rule_and_known_method(client: Client) -> None:
    added = {  # neither the raw path nor a made-up method names a series
        'http_requests_total{method="GET",route="/api/counter",status="200"}': 2,
        'http_requests_total{method="GET",route="unmatched",status="404"}': 1,
        'http_requests_total{method="other",route="unmatched",status="405"}': 1,
    }
    before = await scrape(client)
    for path in ("/api/counter", "/api/counter", "/no/such/page/42"):
        await client.get(path)
    await client.open("/api/counter", method="FROBNICATE")  # type: ignore[call-arg]
    after = await scrape(client)
    assert {series: after[series] - before.get(series, 0) for series in added} == added
    assert not [key for key in after if "/no/such/page/42" in key or "FROBNICATE" in key]
    assert after['http_request_duration_seconds_count{route="/api/counter"}'] >= 2


async def test_pool_use_is_reported(app: Quart) -> None:
    async with app.app_context(), get_db().engine.connect():  # one connection checked out
        samples = await scrape(app.test_client())
    assert samples['db_pool_connections_in_use{pool="transaction"}'] == 1
    assert samples['db_pool_connections_in_use{pool="counter"}'] == 0


@pytest.fixture(scope="module")
def web(settings: Settings) -> Iterator[Server]:
    """Hypercorn as production runs it, logging each request: one for the module."""
    with run_hypercorn(production(settings, log_requests=True)) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(web: Server) -> Iterator[Nginx]:
    """nginx on the project's template in front of `web`."""
    with run_nginx([web.netloc]) as server:
        yield server


def logged(lines: Callable[[], list[str]], marker: str) -> str:
    """The first of `lines()` with `marker` in it, once there is one: logs trail the response."""
    return poll_until(lambda: next((line for line in lines() if marker in line), None), 5, marker)


def app_line(web: Server, marker: str) -> dict[str, object]:
    """The app's first JSON log line with `marker` in it."""
    return json.loads(logged(lambda: web.log().splitlines(), marker))  # type: ignore[no-any-return]


@pytest.mark.processes
def test_one_id_end_to_end_and_every_app_line_json(web: Server, proxy: Nginx) -> None:
    for path in ("/nope", "/api/nope"):  # the HTML and the JSON error page
        # A client's own ID is not trusted at the edge: nginx makes one.
        reply = fetch(proxy.url, path, headers={"X-Request-ID": "client-chosen-id"})
        assert reply.status == 404
        request_id = reply.headers["X-Request-ID"]
        assert reply.headers.get_all("X-Request-ID") == [request_id]  # nginx's, not the app's too
        assert NGINX_ID.fullmatch(request_id), request_id
        assert request_id in reply.text
        line = app_line(web, request_id)
        assert (line["method"], line["path"], line["status"]) == ("GET", path, 404)
        assert isinstance(line["duration_ms"], float)
        assert logged(proxy.access_log, request_id).endswith(f"request_id={request_id}")
    lines = json_lines(web.log())  # Hypercorn's own lines too: one handler for everything
    assert any(line["logger"] == "hypercorn.error" for line in lines)
    fields = {"time", "level", "logger", "message", "request_id"}
    assert all(fields <= line.keys() for line in lines)
    assert "client-chosen-id" not in web.log()


@pytest.mark.processes
def test_a_listed_balancer_keeps_its_own_id(
    web: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The template's documented edit: trust the balancer at 127.0.0.2 (loopback has all of /8).
    template = servers.TEMPLATE.read_text().replace("default 0;\n}", "default 0;\n127.0.0.2 1;\n}")
    monkeypatch.setattr(servers, "TEMPLATE", tmp_path / "default.conf.template")
    servers.TEMPLATE.write_text(template)
    sent = {"X-Request-ID": "lb-7f3a-0001"}
    with run_nginx([web.netloc]) as edge:
        balancer = fetch(edge.url, "/healthz", headers=sent, source="127.0.0.2")
        garbled = fetch(edge.url, "/healthz", headers={"X-Request-ID": "a b"}, source="127.0.0.2")
    assert balancer.headers["X-Request-ID"] == "lb-7f3a-0001"
    assert app_line(web, "lb-7f3a-0001")["path"] == "/healthz"
    assert NGINX_ID.fullmatch(garbled.headers["X-Request-ID"])


@pytest.mark.processes
def test_nginx_hides_metrics_that_the_app_serves(proxy: Nginx) -> None:
    # nginx matches locations on the normalised path: these are all /metrics to it.
    for path in ("/metrics", "//metrics", "/%6Detrics", "/metrics?format=text", "/./metrics"):
        reply = fetch(proxy.url, path)
        assert reply.status == 404, path
        assert "http_requests_total" not in reply.text


@pytest.mark.processes
def test_a_wrong_password_is_logged_and_counted_but_never_shown(settings: Settings) -> None:
    wrong = production(settings, db_password=WRONG_PASSWORD)
    with run_hypercorn(wrong) as server:
        reply = fetch(server.url, "/api/counter")
        assert reply.status == 503
        assert "Access denied" not in reply.text  # the driver's words are for the log only
        line = app_line(server, "Access denied")
        samples = parse(fetch(server.url, "/metrics").text)
        logs = server.log()
    assert line["request_id"] == reply.headers["X-Request-ID"]
    assert (line["logger"], line["level"]) == ("counter.db", "WARNING")
    assert str(line["message"]).startswith("database unavailable: Access denied")
    assert samples['db_errors_total{kind="1045"}'] == 1  # MySQL's "access denied"
    assert samples['db_circuit_breaker_state{state="open"}'] == 1
    assert "counter.access" not in logs  # LOG_REQUESTS is off by default
    assert WRONG_PASSWORD not in logs
    assert wrong.secret_key not in logs


def query(prometheus: str, promql: str) -> dict[str, float]:
    """An instant query through Prometheus's HTTP API: each series' value by its route label."""
    body = fetch(prometheus, "/api/v1/query?" + urlencode({"query": promql})).json()
    assert body["status"] == "success", body
    result = body["data"]["result"]  # type: ignore[index]
    return {series["metric"].get("route", ""): float(series["value"][1]) for series in result}


@pytest.fixture
def prometheus(web: Server) -> Iterator[str]:
    """A real Prometheus scraping `web` every second, once it has scraped it; its URL."""
    port, target = free_port(), web.netloc
    every_second = {"scrape_interval": "1s", "scrape_timeout": "1s"}
    job = {"job_name": "counter", **every_second, "static_configs": [{"targets": [target]}]}
    with tempfile.TemporaryDirectory(prefix="prometheus-") as tmp:
        config = Path(tmp, "prometheus.yml")
        config.write_text(json.dumps({"scrape_configs": [job]}))  # JSON is YAML
        options = [f"--config.file={config}", f"--storage.tsdb.path={tmp}"]
        command = [require_tool("prometheus"), *options, f"--web.listen-address=127.0.0.1:{port}"]
        with run_server(command, port, {}, Path(tmp)) as server:
            wait_for_status(server.url, "/-/ready", 200, 30)
            up = 'up{job="counter"}'
            poll_until(lambda: query(server.url, up) == {"": 1}, 30, "the first scrape (about 5 s)")
            yield server.url


@pytest.mark.processes
def test_a_real_prometheus_counts_exactly_the_load(web: Server, prometheus: str) -> None:
    visits = 'http_requests_total{route="/",method="GET",status="200"}'
    served = parse(fetch(web.url, "/metrics").text)  # what the earlier tests added
    start = served.get('http_requests_total{method="GET",route="/",status="200"}', 0)
    batched, batches = served["counter_batch_size_sum"], served["counter_batch_size_count"]

    def scraped(views: float) -> bool:
        return query(prometheus, visits) == {"/": views}

    with ThreadPoolExecutor(8) as pool:
        # In two halves, each seen by a scrape: the rate() queries need two samples.
        for done in (LOAD // 2, LOAD):
            statuses = pool.map(lambda _: fetch(web.url, "/").status, range(LOAD // 2))
            assert set(statuses) == {200}
            poll_until(partial(scraped, start + done), 15, visits)
    # Every page view went out in exactly one UPDATE batch, of one view or more.
    assert query(prometheus, "sum(counter_batch_size_sum)") == {"": batched + LOAD}
    assert 0 < query(prometheus, "sum(counter_batch_size_count)")[""] - batches <= LOAD
    assert query(prometheus, "count(db_pool_connections_in_use)") == {"": 2}
    assert query(prometheus, 'db_circuit_breaker_state{state="closed"}') == {"": 1}
    rates, p99, errors = (query(prometheus, promql) for promql in README_QUERIES)
    assert rates["/"] > 0, rates
    assert 0 < p99[""] <= 10, p99  # seconds
    assert errors == {"": 0}
