"""Request IDs and logs: in the app, and end to end through the real nginx and Hypercorn."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from quart import Quart
from quart.testing import QuartClient

from counter import create_app
from counter.config import Settings
from counter.observe import configure_logging
from harness import servers
from harness.poll import poll_until
from harness.provision import WEB_DIR
from harness.servers import Nginx, Server, run_hypercorn, run_nginx
from harness.tools import free_port
from http_client import fetch

NGINX_ID = re.compile(r"[0-9a-f]{32}")
# Wrong on purpose, and distinctive: no log line may ever show it.
WRONG_PASSWORD = "Wr0ng-pw-7c1e9a-OBSERVE"


def production(settings: Settings, **changes: object) -> Settings:
    """`settings` as production runs: QUART_ENV=production, a real-length secret key, and
    LOG_REQUESTS at its default (off), whatever .quartenv turns on for development."""
    defaults = {
        "environment": "production",
        "secret_key": secrets.token_urlsafe(32),
        "log_requests": False,
    }
    return dataclasses.replace(settings, **{**defaults, **changes})


@contextmanager
def captured_logs(settings: Settings) -> Iterator[io.StringIO]:
    """The app's logging for `settings`, into a buffer; the root logger is put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(settings, stream)
    try:
        yield stream
    finally:
        root.handlers, root.level = handlers, level


@pytest.fixture
def log_stream(settings: Settings) -> Iterator[io.StringIO]:
    """Production logging with access lines (masking this run's password and key), one test."""
    logged = production(settings, secret_key=settings.secret_key, log_requests=True)
    with captured_logs(logged) as stream:
        yield stream


def json_lines(text: str) -> list[dict[str, object]]:
    """Every line of `text` parsed as one JSON object (fails on a line that is not)."""
    return [json.loads(line) for line in text.splitlines()]


async def test_direct_hit_gets_an_id_and_a_valid_sent_one_is_kept(client: QuartClient) -> None:
    made = (await client.get("/healthz")).headers["X-Request-ID"]
    assert NGINX_ID.fullmatch(made)
    kept = await client.get("/healthz", headers={"X-Request-ID": "lb-5f1d.2_a"})
    assert kept.headers["X-Request-ID"] == "lb-5f1d.2_a"


@pytest.mark.parametrize("sent", ["two words", 'quote"d', "x" * 129, "ünïcode", ""])
async def test_an_id_that_could_break_a_log_line_is_replaced(
    client: QuartClient, sent: str
) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": sent})
    assert NGINX_ID.fullmatch(response.headers["X-Request-ID"])


async def test_error_pages_show_the_id(client: QuartClient) -> None:
    api = await client.get("/api/nope")
    body = await api.get_json()
    assert body["error"]["request_id"] == api.headers["X-Request-ID"]
    page = await client.get("/nope")
    assert page.status_code == 404
    assert page.headers["X-Request-ID"] in await page.get_data(as_text=True)


async def test_every_line_of_a_request_carries_its_id(
    settings: Settings, log_stream: io.StringIO
) -> None:
    # Nothing listens on this port: the request logs the outage, then its access line.
    down = create_app(dataclasses.replace(settings, db_port=free_port()))
    async with down.test_app():
        response = await down.test_client().get("/", headers={"X-Request-ID": "req-outage-1"})
    assert response.status_code == 503
    lines = [line for line in json_lines(log_stream.getvalue()) if line["request_id"] != "-"]
    assert {line["logger"] for line in lines} == {"counter.db", "counter.access"}, lines
    assert {line["request_id"] for line in lines} == {"req-outage-1"}
    warning = next(line for line in lines if line["logger"] == "counter.db")
    assert warning["level"] == "WARNING"
    assert "database unavailable" in str(warning["message"])
    access = next(line for line in lines if line["logger"] == "counter.access")
    assert (access["method"], access["path"], access["status"]) == ("GET", "/", 503)
    assert isinstance(access["duration_ms"], float)
    assert {"time", "level", "message"} <= access.keys()


async def test_known_secrets_are_masked_in_every_line(
    settings: Settings, log_stream: io.StringIO
) -> None:
    # Settings' repr holds the password and the key; so may an exception's message one day.
    logging.getLogger("counter.test").warning("settings: %r", settings)
    try:
        raise RuntimeError(f"boom {settings.db_password}")
    except RuntimeError:
        logging.getLogger("counter.test").exception("failed")
    text = log_stream.getvalue()
    assert settings.db_password not in text
    assert settings.secret_key not in text
    assert text.count("***") >= 3, text
    assert len(json_lines(text)) == 2  # a traceback stays inside its JSON line


async def test_a_secret_is_masked_in_its_json_escaped_form_too(settings: Settings) -> None:
    tricky = 'pa"ss\\word-91f'
    with captured_logs(production(settings, db_password=tricky)) as stream:
        logging.getLogger("counter.test").warning("password is %s", tricky)
    assert json_lines(stream.getvalue())[0]["message"] == "password is ***"


async def test_development_lines_are_readable(settings: Settings) -> None:
    app: Quart = create_app(settings)
    # The fixture's settings are development ones.
    with captured_logs(dataclasses.replace(settings, log_requests=True)) as stream:
        async with app.test_app():
            await app.test_client().get("/healthz", headers={"X-Request-ID": "dev-id-1"})
    line = next(line for line in stream.getvalue().splitlines() if "counter.access" in line)
    assert re.search(r" INFO counter\.access \[dev-id-1\] GET /healthz 200 \d+\.\d ms$", line)


async def test_access_lines_are_off_by_default(client: QuartClient, settings: Settings) -> None:
    with captured_logs(production(settings)) as stream:
        await client.get("/healthz")
        await client.get("/nope")
    assert "counter.access" not in stream.getvalue()


# --- The real processes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web(settings: Settings) -> Iterator[Server]:
    """Hypercorn as production runs it: manage:app, hypercorn_conf.py, QUART_ENV=production."""
    with run_hypercorn(production(settings, log_requests=True)) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(web: Server) -> Iterator[Nginx]:
    """nginx on the project's template in front of `web`."""
    with run_nginx([urlsplit(web.url).netloc]) as server:
        yield server


def app_line(web: Server, request_id: str) -> dict[str, object]:
    """The app's JSON access line for `request_id` (written once the response is out)."""
    return poll_until(
        lambda: next(
            (line for line in json_lines(web.log()) if line.get("request_id") == request_id),
            None,
        ),
        5,
        f"the app's log line for {request_id}",
    )


def nginx_line(proxy: Nginx, request_id: str) -> str:
    """nginx's access line for `request_id`."""
    return poll_until(
        lambda: next((line for line in proxy.access_log() if request_id in line), None),
        5,
        f"nginx's log line for {request_id}",
    )


@pytest.mark.processes
def test_one_id_in_the_response_the_app_log_and_the_nginx_log(web: Server, proxy: Nginx) -> None:
    # A client's own ID is not trusted at the edge: nginx makes one.
    reply = fetch(proxy.url, "/", headers={"X-Request-ID": "client-chosen-id"})
    assert reply.status == 200
    request_id = reply.headers["X-Request-ID"]
    assert reply.headers.get_all("X-Request-ID") == [request_id]  # nginx's, not also the app's
    assert NGINX_ID.fullmatch(request_id), request_id
    line = app_line(web, request_id)
    assert (line["logger"], line["method"], line["path"], line["status"]) == (
        "counter.access", "GET", "/", 200,
    )  # fmt: skip
    assert nginx_line(proxy, request_id).endswith(f"request_id={request_id}")
    assert "client-chosen-id" not in web.log()


@pytest.mark.processes
def test_a_listed_balancer_keeps_its_own_id(
    web: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The template's documented edit: trust the balancer at 127.0.0.2 (loopback has all of /8).
    template = servers.TEMPLATE.read_text().replace("default 0;\n}", "default 0;\n127.0.0.2 1;\n}")
    assert "127.0.0.2 1;" in template
    monkeypatch.setattr(servers, "TEMPLATE", tmp_path / "default.conf.template")
    servers.TEMPLATE.write_text(template)
    sent = {"X-Request-ID": "lb-7f3a-0001"}
    with run_nginx([urlsplit(web.url).netloc]) as proxy:
        balancer = fetch(proxy.url, "/healthz", headers=sent, source="127.0.0.2")
        client = fetch(proxy.url, "/healthz", headers=sent)
        garbled = fetch(proxy.url, "/healthz", headers={"X-Request-ID": "a b"}, source="127.0.0.2")
    assert balancer.headers["X-Request-ID"] == "lb-7f3a-0001"
    assert app_line(web, "lb-7f3a-0001")["path"] == "/healthz"
    assert NGINX_ID.fullmatch(client.headers["X-Request-ID"])
    assert NGINX_ID.fullmatch(garbled.headers["X-Request-ID"])


@pytest.mark.processes
def test_nginx_own_errors_carry_an_id_too(proxy: Nginx) -> None:
    reply = fetch(proxy.url, "/" + "a" * 9000)
    assert reply.status == 414  # answered by nginx: the app never sees it
    assert NGINX_ID.fullmatch(reply.headers["X-Request-ID"])
    assert " 414 " in nginx_line(proxy, reply.headers["X-Request-ID"])


@pytest.mark.processes
def test_every_app_line_is_json_in_production(web: Server, proxy: Nginx) -> None:
    fetch(proxy.url, "/nope")
    lines = json_lines(web.log())  # Hypercorn's own lines too: one handler for everything
    assert any(line["logger"] == "hypercorn.error" for line in lines)
    fields = {"time", "level", "logger", "message", "request_id"}
    assert all(fields <= line.keys() for line in lines)


@pytest.mark.processes
def test_a_wrong_password_never_reaches_a_log(settings: Settings) -> None:
    wrong = production(settings, db_password=WRONG_PASSWORD, db_startup_timeout=3.0)
    env = {**os.environ, **wrong.to_env(), "WEB_BIND": f"127.0.0.1:{free_port()}"}
    preflight = subprocess.run(
        [sys.executable, "-m", "counter.preflight"], cwd=WEB_DIR, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert preflight.returncode == 1
    assert "Access denied" in preflight.stderr, preflight.stderr
    with run_hypercorn(wrong) as server:
        reply = fetch(server.url, "/api/counter")
        assert reply.status == 503
        denied = poll_until(
            lambda: [line for line in json_lines(server.log()) if "denied" in str(line["message"])],
            5, "the access-denied line",
        )  # fmt: skip
        assert denied[0]["request_id"] == reply.headers["X-Request-ID"]
        logs = preflight.stdout + preflight.stderr + server.log()
    assert WRONG_PASSWORD not in logs
    assert wrong.secret_key not in logs
