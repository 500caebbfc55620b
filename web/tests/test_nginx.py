"""The nginx template: rendered like the image's envsubst, it is valid for the real nginx binary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nginx_runner import TEMPLATE, nginx_command, render, write_config
from servers import require_tool

VARIABLES = {
    "WEB_UPSTREAM": "web:8000",
    "NGINX_PORT": "80",
    "NGINX_ACCESS_LOG": "/var/log/nginx/access.log",
}


@pytest.fixture(scope="module")
def rendered() -> str:
    """The site config the compose nginx would get."""
    return render(VARIABLES)


def test_only_the_intended_variables_are_substituted(rendered: str) -> None:
    assert "server web:8000 max_fails=1 fail_timeout=2s;" in rendered
    assert "listen 80 default_server;" in rendered
    assert "${" not in rendered
    # nginx's own variables survive, since they are not defined in the container's environment.
    for name in ("$host", "$remote_addr", "$proxy_add_x_forwarded_for", "$scheme"):
        assert name in rendered


def test_matches_what_envsubst_renders(rendered: str) -> None:
    envsubst = require_tool("envsubst")  # Debian's gettext-base
    # Exactly how the image's entrypoint calls it: a list of the defined variables' names.
    names = " ".join(f"${{{name}}}" for name in VARIABLES)
    result = subprocess.run(
        [envsubst, names],
        input=TEMPLATE.read_text(),
        env=VARIABLES,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == rendered


@pytest.mark.parametrize(
    "directive",
    [
        "server_tokens off;",
        "keepalive 32;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header Host $host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        # The app trusts one hop of X-Forwarded-Host: never let a client's through.
        "proxy_set_header X-Forwarded-Host $host;",
        'proxy_set_header Forwarded "";',
        # Which replica answered, in the log.
        "log_format proxied ",
        "upstream=$upstream_addr",
        "access_log /var/log/nginx/access.log proxied;",
        "client_max_body_size 64k;",
        'add_header X-Content-Type-Options "nosniff" always;',
        'add_header X-Frame-Options "DENY" always;',
        "add_header Referrer-Policy ",
        "add_header Content-Security-Policy \"default-src 'self';",
        "frame-ancestors 'none'",
        "proxy_read_timeout 30s;",
    ],
)
def test_has_directive(rendered: str, directive: str) -> None:
    assert directive in rendered


def test_add_header_only_at_server_level(rendered: str) -> None:
    # A location with its own add_header drops every inherited one, security headers included.
    location = rendered[rendered.index("location / {") :]
    assert "add_header" not in location


def test_nginx_accepts_the_rendered_config(tmp_path: Path) -> None:
    nginx = require_tool("nginx")
    config = write_config(tmp_path, "127.0.0.1:9", 8080)
    result = subprocess.run(
        nginx_command(nginx, tmp_path, config, "-t"), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
