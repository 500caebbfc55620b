"""HTTPS through the real nginx, as the TLS entrypoint script sets it up with a `make cert` cert.

The harness's nginx (the project's template) in front of a real Hypercorn on the test database;
then nginx/docker-entrypoint.d/30-tls-when-certs-mounted.sh writes its file next to nginx.conf,
as in the image, and a reload (SIGHUP) reads it.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
import yaml

from counter.config import Settings
from harness.poll import poll_until
from harness.provision import WEB_DIR
from harness.servers import TEMPLATES, run_hypercorn, run_nginx
from harness.tools import free_port, require_tool
from http_client import fetch

pytestmark = pytest.mark.processes

NGINX_DIR = TEMPLATES.parent
TLS_SCRIPT = NGINX_DIR / "docker-entrypoint.d" / "30-tls-when-certs-mounted.sh"
MAKE_CERT = NGINX_DIR / "make-cert.sh"
# What the template adds to every response, TLS or not.
SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy")


@dataclass(frozen=True)
class TlsProxy:
    """nginx with TLS on: its plain and its HTTPS address, and the certificate to trust."""

    http_url: str
    https_url: str
    public_host: str
    certificate: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tls.crt and tls.key, made by `make cert`'s script."""
    require_tool("openssl")
    directory = tmp_path_factory.mktemp("certs")
    subprocess.run(["sh", str(MAKE_CERT), str(directory)], check=True, capture_output=True)
    return directory


def enable_tls(certs: Path, conf_dir: Path, port: str, public_host: str) -> str:
    """Run the entrypoint script for nginx's `conf_dir`; what it logged."""
    env = {
        "PATH": os.environ["PATH"],
        "NGINX_CERTS_DIR": str(certs),
        "NGINX_TLS_CONF_DIR": str(conf_dir),
        "NGINX_TLS_PORT": port,
        "NGINX_PUBLIC_HOST": public_host,
    }
    done = subprocess.run(["sh", str(TLS_SCRIPT)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def proxy(settings: Settings, certs: Path) -> Iterator[TlsProxy]:
    """nginx on two free ports (HTTP, HTTPS) in front of one Hypercorn on the test database."""
    https_port = free_port()
    public_host = f"localhost:{https_port}"
    with run_hypercorn(settings) as app, run_nginx([urlsplit(app.url).netloc]) as nginx:
        enable_tls(certs, nginx.directory / "tls.d", f"127.0.0.1:{https_port}", public_host)
        nginx.process.send_signal(signal.SIGHUP)
        tls = TlsProxy(nginx.url, f"https://{public_host}", public_host, certs / "tls.crt")
        with https_client(tls) as client:
            try:
                # Both ports on the new config: HTTPS answers, plain HTTP redirects.
                poll_until(
                    lambda: client.get(f"{tls.https_url}/healthz").status_code == 200
                    and fetch(tls.http_url, "/reload-check").status == 308,
                    10, "HTTPS after nginx's reload", errors=(httpx.TransportError,),
                )  # fmt: skip
                # ...and the old worker, which may still accept with the old config, is gone.
                master = psutil.Process(nginx.process.pid)
                poll_until(lambda: len(master.children()) == 1, 10, "the old worker's exit")
            except TimeoutError as err:
                raise AssertionError(f"{err}\n--- nginx ---\n{nginx.log()}") from None
        yield tls


def https_client(proxy: TlsProxy) -> httpx.Client:
    """An HTTP/2-capable client that trusts only the generated certificate."""
    context = ssl.create_default_context(cafile=proxy.certificate)
    return httpx.Client(http2=True, verify=context, trust_env=False, timeout=10)


def test_page_over_https_with_http2(proxy: TlsProxy) -> None:
    with https_client(proxy) as client:
        first = client.get(f"{proxy.https_url}/")
        second = client.get(f"{proxy.https_url}/")
    assert first.status_code == second.status_code == 200, first.text
    assert first.http_version == "HTTP/2"
    assert "Counter:" in first.text


def test_https_sends_hsts_and_the_security_headers(proxy: TlsProxy) -> None:
    with https_client(proxy) as client:
        reply = client.get(f"{proxy.https_url}/healthz")
    assert reply.status_code == 200
    assert reply.headers["strict-transport-security"] == "max-age=86400"
    for name in SECURITY_HEADERS:
        assert name in reply.headers, name
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]


def test_plain_http_redirects_to_the_configured_host_not_the_clients(proxy: TlsProxy) -> None:
    reply = fetch(proxy.http_url, "/api/counter?x=1", "POST", headers={"Host": "evil.example"})
    # 308, not 301: a POST stays a POST.
    assert reply.status == 308
    assert reply.headers["Location"] == f"https://{proxy.public_host}/api/counter?x=1"
    assert reply.headers["X-Frame-Options"] == "DENY"


def test_healthz_stays_on_plain_http_for_container_healthchecks(proxy: TlsProxy) -> None:
    reply = fetch(proxy.http_url, "/healthz")
    assert reply.status == 200, reply.text


def test_an_untrusted_certificate_is_refused(proxy: TlsProxy) -> None:
    # The client really verifies: the system's trust store does not know our certificate.
    with (
        httpx.Client(http2=True, trust_env=False, timeout=10) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"{proxy.https_url}/healthz")


def test_without_a_certificate_the_script_turns_tls_off(tmp_path: Path, certs: Path) -> None:
    conf_dir = tmp_path / "tls.d"
    enable_tls(certs, conf_dir, "443", "localhost")
    assert (conf_dir / "https.conf").is_file()
    # The certificate is unmounted and the container restarts: the old config must go.
    logged = enable_tls(tmp_path / "no-certs", conf_dir, "443", "localhost")
    assert "plain HTTP only" in logged
    assert list(conf_dir.iterdir()) == []


def test_a_public_host_that_would_break_the_config_is_refused(tmp_path: Path, certs: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "NGINX_CERTS_DIR": str(certs),
        "NGINX_TLS_CONF_DIR": str(tmp_path),
        "NGINX_PUBLIC_HOST": "example.com; return 200",
    }
    done = subprocess.run(["sh", str(TLS_SCRIPT)], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "NGINX_PUBLIC_HOST" in done.stderr


@pytest.mark.docker
def test_the_compose_override_mounts_the_certificate_and_the_script() -> None:
    docker = require_tool("docker")
    files = ["-f", "docker-compose.yml", "-f", "docker-compose.tls.yml"]
    done = subprocess.run(
        [docker, "compose", *files, "config", "--format", "json"],
        cwd=WEB_DIR.parent, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    nginx = yaml.safe_load(done.stdout)["services"]["nginx"]
    assert {port["target"] for port in nginx["ports"]} == {80, 443}
    mounts = {volume["target"]: Path(volume["source"]) for volume in nginx["volumes"]}
    assert mounts["/etc/nginx/certs"] == WEB_DIR.parent / "nginx" / "certs"
    script = f"/docker-entrypoint.d/{TLS_SCRIPT.name}"
    assert mounts[script] == WEB_DIR.parent / "nginx" / "docker-entrypoint.d" / TLS_SCRIPT.name
    assert nginx["environment"]["NGINX_PUBLIC_HOST"]
