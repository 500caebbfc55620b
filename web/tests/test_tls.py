"""HTTPS through the real nginx (the harness's, the project's template) in front of a real
Hypercorn, once nginx/docker-entrypoint.d/30-tls-when-certs-mounted.sh has written its file for a
`make cert` certificate and a reload (SIGHUP) has read it."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from counter.config import Settings
from harness.poll import poll_until
from harness.servers import TEMPLATES, run_hypercorn, run_nginx
from harness.tools import free_port, require_tool
from http_client import fetch

pytestmark = pytest.mark.processes

TLS_SCRIPT = TEMPLATES.parent / "docker-entrypoint.d" / "30-tls-when-certs-mounted.sh"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tls.crt and tls.key, made by `make cert`'s script."""
    require_tool("openssl")
    directory = tmp_path_factory.mktemp("certs")
    make_cert = ["sh", str(TEMPLATES.parent / "make-cert.sh"), str(directory)]
    subprocess.run(make_cert, check=True, capture_output=True)
    return directory


def tls_script(certs: Path, conf_dir: Path, host: str, port: str = "443") -> tuple[int, str]:
    """Run the entrypoint script for nginx's `conf_dir`: its exit status and what it logged."""
    env = {"PATH": os.environ["PATH"], "NGINX_CERTS_DIR": str(certs)}
    env |= {"NGINX_TLS_CONF_DIR": str(conf_dir), "NGINX_TLS_PORT": port, "NGINX_PUBLIC_HOST": host}
    done = subprocess.run(["sh", str(TLS_SCRIPT)], env=env, capture_output=True, text=True)
    return done.returncode, done.stderr


def https_client(certs: Path) -> httpx.Client:
    """An HTTP/2-capable client that trusts only the generated certificate."""
    context = ssl.create_default_context(cafile=certs / "tls.crt")
    return httpx.Client(http2=True, verify=context, trust_env=False, timeout=10)


@pytest.fixture(scope="module")
def proxy(settings: Settings, certs: Path) -> Iterator[tuple[str, str]]:
    """nginx's plain and HTTPS addresses (two free ports) before one Hypercorn on the test db."""
    https_port = free_port()
    with run_hypercorn(settings) as app, run_nginx([app.netloc]) as nginx:
        tls_dir, host = nginx.directory / "tls.d", f"localhost:{https_port}"
        assert tls_script(certs, tls_dir, host, f"127.0.0.1:{https_port}")[0] == 0
        nginx.process.send_signal(signal.SIGHUP)
        with https_client(certs) as client:
            try:
                # Both ports on the new config: HTTPS answers, plain HTTP redirects...
                poll_until(
                    lambda: client.get(f"https://{host}/healthz").status_code == 200
                    and fetch(nginx.url, "/reload-check").status == 308,
                    10, "HTTPS after nginx's reload", errors=(httpx.TransportError,),
                )  # fmt: skip
                # ...and the old worker, which may still accept with the old config, is gone.
                master = psutil.Process(nginx.process.pid)
                poll_until(lambda: len(master.children()) == 1, 10, "the old worker's exit")
            except TimeoutError as err:
                raise AssertionError(f"{err}\n--- nginx ---\n{nginx.log()}") from None
        yield nginx.url, f"https://{host}"


def test_page_over_https_with_http2(proxy: tuple[str, str], certs: Path) -> None:
    with https_client(certs) as client:
        first, second = client.get(f"{proxy[1]}/"), client.get(f"{proxy[1]}/")
    assert first.status_code == second.status_code == 200, first.text
    assert first.http_version == "HTTP/2"
    assert "Counter:" in first.text


def test_https_sends_hsts_and_the_security_headers(proxy: tuple[str, str], certs: Path) -> None:
    with https_client(certs) as client:
        reply = client.get(f"{proxy[1]}/healthz")
    assert reply.status_code == 200
    assert reply.headers["strict-transport-security"] == "max-age=86400"
    assert {"x-content-type-options", "x-frame-options", "referrer-policy"} <= reply.headers.keys()
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]


def test_plain_http_redirects_to_the_configured_host_not_the_clients(
    proxy: tuple[str, str],
) -> None:
    reply = fetch(proxy[0], "/api/counter?x=1", "POST", headers={"Host": "evil.example"})
    assert reply.status == 308  # not 301: a POST stays a POST
    assert reply.headers["Location"] == f"{proxy[1]}/api/counter?x=1"
    assert reply.headers["X-Frame-Options"] == "DENY"
    # ...but /healthz stays on plain HTTP, for container healthchecks.
    assert fetch(proxy[0], "/healthz").status == 200


def test_an_untrusted_certificate_is_refused(proxy: tuple[str, str]) -> None:
    # The client really verifies: the system's trust store does not know our certificate.
    with (
        httpx.Client(http2=True, trust_env=False, timeout=10) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"{proxy[1]}/healthz")


def test_without_a_certificate_the_script_turns_tls_off(tmp_path: Path, certs: Path) -> None:
    conf_dir = tmp_path / "tls.d"
    assert tls_script(certs, conf_dir, "localhost")[0] == 0
    assert (conf_dir / "https.conf").is_file()
    # The certificate is unmounted and the container restarts: the old config must go.
    status, logged = tls_script(tmp_path / "no-certs", conf_dir, "localhost")
    assert status == 0
    assert "plain HTTP only" in logged
    assert list(conf_dir.iterdir()) == []


def test_a_public_host_that_would_break_the_config_is_refused(tmp_path: Path, certs: Path) -> None:
    status, logged = tls_script(certs, tmp_path, "example.com; return 200")
    assert status == 1
    assert "NGINX_PUBLIC_HOST" in logged
