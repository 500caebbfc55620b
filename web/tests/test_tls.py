"""HTTPS through the real nginx (the project's template) before a real Hypercorn, once the
entrypoint's 30-tls-when-certs-mounted.sh has written its file for a `make cert` certificate."""

import os
import signal
import ssl
import subprocess
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


def test_https_over_http2_with_hsts_plain_http_redirected(settings: Settings, certs: Path) -> None:
    port = free_port()
    host = f"localhost:{port}"
    context = ssl.create_default_context(cafile=certs / "tls.crt")
    with (
        run_hypercorn(settings) as app,
        run_nginx([app.netloc]) as nginx,
        httpx.Client(http2=True, verify=context, trust_env=False, timeout=10) as client,
    ):
        assert tls_script(certs, nginx.directory / "tls.d", host, f"127.0.0.1:{port}")[0] == 0
        nginx.process.send_signal(signal.SIGHUP)

        def reloaded() -> bool:  # both ports on the new config: HTTPS answers, HTTP redirects
            https = client.get(f"https://{host}/healthz").status_code == 200
            return https and fetch(nginx.url, "/reload-check").status == 308

        try:
            poll_until(reloaded, 10, "HTTPS after nginx's reload", errors=(httpx.TransportError,))
            # ...and the old worker, which may still accept with the old config, is gone.
            master = psutil.Process(nginx.process.pid)
            poll_until(lambda: len(master.children()) == 1, 10, "the old worker's exit")
        except TimeoutError as err:
            raise AssertionError(f"{err}\n--- nginx ---\n{nginx.log()}") from None
        page = client.get(f"https://{host}/")
        assert (page.status_code, page.http_version) == (200, "HTTP/2")
        assert "Counter:" in page.text
        assert page.headers["strict-transport-security"] == "max-age=86400"
        # On top of the template's security headers, not instead of them.
        for name in ("x-content-type-options", "x-frame-options", "referrer-policy"):
            assert name in page.headers, name
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        # Plain HTTP goes to the configured host, never the client's; 308: a POST stays a POST.
        reply = fetch(nginx.url, "/api/counter?x=1", "POST", headers={"Host": "evil.example"})
        assert (reply.status, reply.headers["Location"]) == (308, f"https://{host}/api/counter?x=1")
        # ...but /healthz stays on plain HTTP, for container healthchecks.
        assert fetch(nginx.url, "/healthz").status == 200


def test_the_script_turns_tls_off_without_a_certificate_and_refuses_a_bad_host(
    tmp_path: Path, certs: Path
) -> None:
    conf_dir = tmp_path / "tls.d"
    assert tls_script(certs, conf_dir, "localhost")[0] == 0
    assert (conf_dir / "https.conf").is_file()
    # The certificate is unmounted and the container restarts: the old config must go.
    status, logged = tls_script(tmp_path / "no-certs", conf_dir, "localhost")
    assert status == 0
    assert "plain HTTP only" in logged
    assert list(conf_dir.iterdir()) == []
    # A public host that would break the config it ends up in.
    status, logged = tls_script(certs, conf_dir, "example.com; return 200")
    assert status == 1
    assert "NGINX_PUBLIC_HOST" in logged
