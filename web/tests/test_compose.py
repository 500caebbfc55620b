"""What the compose files promise that the running stack (.ci/run: make up, make scale, make test)
cannot show, as the real `docker compose` binary reads them (no containers are started)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from counter.config import REPO_DIR
from harness.tools import require_tool, skip_unless_ci

pytestmark = pytest.mark.docker

DEV, TEST, TLS = "docker-compose.yml", "docker-compose.test.yml", "docker-compose.tls.yml"


@functools.cache
def services(*files: str) -> dict[str, Any]:
    """The services after interpolation, env_file merging and defaults, as `docker compose` reads
    them in a fresh shell: without the .quartenv variables conftest loaded."""
    compose = [require_tool("docker"), "compose"]
    if subprocess.run([*compose, "version"], capture_output=True).returncode != 0:
        skip_unless_ci("`docker compose` (the Compose v2 plugin) is not installed")
    names = set(dotenv_values(REPO_DIR / ".quartenv"))
    env = {key: value for key, value in os.environ.items() if key not in names}
    command = [*compose, *(f"--file={file}" for file in files), "config", "--format", "json"]
    result = subprocess.run(command, cwd=REPO_DIR, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)["services"]
    return found


def test_ports_are_published_on_loopback_only() -> None:
    ports = [port for service in services(DEV).values() for port in service.get("ports", [])]
    assert ports
    assert all(port.get("host_ip") == "127.0.0.1" for port in ports), ports
    # The team's host MySQL and host Hypercorn own these.
    assert {str(port.get("published")) for port in ports}.isdisjoint({"3306", "8000"})


def test_web_never_gets_the_root_password_and_the_test_db_is_throwaway() -> None:
    assert not services(DEV)["web"]["environment"].get("MYSQL_ROOT_PASSWORD")
    assert services(DEV)["db"]["environment"]["MYSQL_ROOT_PASSWORD"]
    testdb = services(TEST)["testdb"]
    assert "/var/lib/mysql" in testdb.get("tmpfs", [])
    assert all(mount["type"] != "volume" for mount in testdb.get("volumes", []))


def test_the_tls_override_mounts_the_certificate_and_the_script() -> None:
    nginx = services(DEV, TLS)["nginx"]
    assert {port["target"] for port in nginx["ports"]} == {80, 443}
    mounts = {volume["target"]: Path(volume["source"]) for volume in nginx["volumes"]}
    assert mounts["/etc/nginx/certs"] == REPO_DIR / "nginx" / "certs"
    script = "docker-entrypoint.d/30-tls-when-certs-mounted.sh"
    assert mounts[f"/{script}"] == REPO_DIR / "nginx" / script
    assert nginx["environment"]["NGINX_PUBLIC_HOST"]


@pytest.mark.parametrize(("stack", "service"), [(DEV, "db"), (TEST, "testdb")])
def test_mysql_is_healthy_only_once_it_listens_on_tcp(stack: str, service: str) -> None:
    # The first-boot temporary server answers on the socket only: a socket ping passes too early.
    assert "-h 127.0.0.1" in " ".join(services(stack)[service]["healthcheck"]["test"])
