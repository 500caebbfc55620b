"""The compose files as the real `docker compose` binary reads them (no containers are started)."""

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


def compose(*args: str, files: tuple[str, ...] = (DEV,)) -> subprocess.CompletedProcess[str]:
    """`docker compose -f <file>... <args>` from the repository's top, as a fresh shell runs it:
    without the .quartenv variables conftest loaded (a shell variable beats env_file's value)."""
    names = set(dotenv_values(REPO_DIR / ".quartenv"))
    env = {key: value for key, value in os.environ.items() if key not in names}
    command = [require_tool("docker"), "compose"]
    command += [arg for file in files for arg in ("-f", str(REPO_DIR / file))] + list(args)
    return subprocess.run(
        command, cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module", autouse=True)
def _compose_plugin() -> None:
    """Skip (fail under CI=true) when docker has no compose plugin."""
    if compose("version").returncode != 0:
        skip_unless_ci("`docker compose` (the Compose v2 plugin) is not installed")


@functools.cache
def services(*files: str) -> dict[str, Any]:
    """The services after interpolation, env_file merging and defaults, as compose will run them."""
    result = compose("config", "--format", "json", files=files)
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)["services"]
    return found


@pytest.mark.parametrize("service", ["db", "web", "nginx"])
def test_dev_services_have_healthchecks(service: str) -> None:
    check = services(DEV)[service].get("healthcheck") or {}
    assert check.get("test")
    assert not check.get("disable")


@pytest.mark.parametrize(("stack", "service"), [(DEV, "db"), (TEST, "testdb")])
def test_mysql_healthcheck_is_over_tcp(stack: str, service: str) -> None:
    # The first-boot temporary server listens on the socket only.
    command = " ".join(services(stack)[service]["healthcheck"]["test"])
    assert "mysqladmin ping" in command
    assert "-h 127.0.0.1" in command


@pytest.mark.parametrize(
    ("stack", "service", "dependency"),
    [(DEV, "web", "db"), (DEV, "nginx", "web"), (TEST, "test", "testdb")],
)
def test_services_wait_for_healthy_dependencies(stack: str, service: str, dependency: str) -> None:
    depends_on = services(stack)[service]["depends_on"]
    assert depends_on[dependency]["condition"] == "service_healthy"


def test_ports_are_published_on_loopback_only() -> None:
    ports = [
        (name, port) for name, service in services(DEV).items() for port in service.get("ports", [])
    ]
    assert ports
    for name, port in ports:
        assert port.get("host_ip") == "127.0.0.1", (name, port)
    # The team's host MySQL and host Hypercorn own these.
    assert {str(port.get("published")) for _, port in ports}.isdisjoint({"3306", "8000"})


def test_web_can_be_scaled_and_never_gets_the_root_password() -> None:
    web = services(DEV)["web"]
    assert not web.get("ports")
    assert "container_name" not in web
    assert web.get("init") is True
    assert web["environment"]["DB_HOST"] == "db"
    assert not web["environment"].get("MYSQL_ROOT_PASSWORD")
    assert services(DEV)["db"]["environment"]["MYSQL_ROOT_PASSWORD"]


def test_mysql_account_is_the_apps() -> None:
    # env_file interpolation: MYSQL_* come from the app's variables in the same .quartenv.
    db, web = services(DEV)["db"]["environment"], services(DEV)["web"]["environment"]
    assert db["MYSQL_DATABASE"] == web["DATABASE_NAME"]
    assert db["MYSQL_USER"] == web["DB_USERNAME"]
    assert db["MYSQL_PASSWORD"] == web["DB_PASSWORD"]
    assert "$" not in db["MYSQL_DATABASE"] + db["MYSQL_USER"] + db["MYSQL_PASSWORD"]


def test_test_db_is_throwaway() -> None:
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
