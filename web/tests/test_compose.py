"""The compose files as the real `docker compose` binary reads them (no containers are started)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest
from dotenv import dotenv_values

from harness.provision import WEB_DIR
from harness.tools import require_tool

pytestmark = pytest.mark.docker

REPO_DIR = WEB_DIR.parent
DEV = "docker-compose.yml"
TEST = "docker-compose.test.yml"
Service = dict[str, Any]


def compose_env() -> dict[str, str]:
    """This process's environment minus .quartenv's names.

    A shell variable wins over .quartenv's value inside env_file interpolation, and conftest has
    loaded .quartenv into os.environ: resolve the files as a fresh shell would.
    """
    names = set(dotenv_values(REPO_DIR / ".quartenv"))
    return {key: value for key, value in os.environ.items() if key not in names}


def compose(file: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`docker compose -f <file> <args>` from the repository's top."""
    docker = require_tool("docker")
    command = [docker, "compose", "-f", str(REPO_DIR / file), *args]
    return subprocess.run(
        command, cwd=REPO_DIR, env=compose_env(), capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module", autouse=True)
def _compose_plugin() -> None:
    """Skip (fail under CI=true) when docker has no compose plugin."""
    if compose(DEV, "version").returncode != 0:
        message = "`docker compose` (the Compose v2 plugin) is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI=true requires it")
        pytest.skip(message)


def resolved(file: str) -> dict[str, Any]:
    """The file after interpolation, env_file merging and defaults, as compose will run it."""
    result = compose(file, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.fixture(scope="module")
def dev() -> dict[str, Service]:
    """The development stack's services."""
    services: dict[str, Service] = resolved(DEV)["services"]
    return services


@pytest.fixture(scope="module")
def test_stack() -> dict[str, Service]:
    """The test stack's services."""
    services: dict[str, Service] = resolved(TEST)["services"]
    return services


@pytest.mark.parametrize("file", [DEV, TEST])
def test_file_is_valid(file: str) -> None:
    result = compose(file, "config", "--quiet")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("service", ["db", "web", "nginx"])
def test_dev_services_have_healthchecks(dev: dict[str, Service], service: str) -> None:
    check = dev[service].get("healthcheck") or {}
    assert check.get("test")
    assert not check.get("disable")


@pytest.mark.parametrize(("stack", "service"), [(DEV, "db"), (TEST, "testdb")])
def test_mysql_healthcheck_is_over_tcp(stack: str, service: str) -> None:
    # The first-boot temporary server listens on the socket only.
    command = " ".join(resolved(stack)["services"][service]["healthcheck"]["test"])
    assert "mysqladmin ping" in command
    assert "-h 127.0.0.1" in command


@pytest.mark.parametrize(
    ("stack", "service", "dependency"),
    [(DEV, "web", "db"), (DEV, "nginx", "web"), (TEST, "test", "testdb")],
)
def test_services_wait_for_healthy_dependencies(stack: str, service: str, dependency: str) -> None:
    depends_on = resolved(stack)["services"][service]["depends_on"]
    assert depends_on[dependency]["condition"] == "service_healthy"


def test_ports_are_published_on_loopback_only(dev: dict[str, Service]) -> None:
    ports = [(name, port) for name, service in dev.items() for port in service.get("ports", [])]
    assert ports
    for name, port in ports:
        assert port.get("host_ip") == "127.0.0.1", (name, port)
    # The team's host MySQL and host Hypercorn own these.
    assert {str(port.get("published")) for _, port in ports}.isdisjoint({"3306", "8000"})


def test_web_can_be_scaled(dev: dict[str, Service]) -> None:
    web = dev["web"]
    assert not web.get("ports")
    assert "container_name" not in web
    assert web.get("init") is True
    assert web["environment"]["DB_HOST"] == "db"


def test_web_never_gets_the_root_password(dev: dict[str, Service]) -> None:
    assert not dev["web"]["environment"].get("MYSQL_ROOT_PASSWORD")
    assert dev["db"]["environment"]["MYSQL_ROOT_PASSWORD"]


def test_mysql_account_is_the_apps(dev: dict[str, Service]) -> None:
    # env_file interpolation: MYSQL_* come from the app's variables in the same .quartenv.
    db, web = dev["db"]["environment"], dev["web"]["environment"]
    assert db["MYSQL_DATABASE"] == web["DATABASE_NAME"]
    assert db["MYSQL_USER"] == web["DB_USERNAME"]
    assert db["MYSQL_PASSWORD"] == web["DB_PASSWORD"]
    assert "$" not in db["MYSQL_DATABASE"] + db["MYSQL_USER"] + db["MYSQL_PASSWORD"]


def test_test_db_is_throwaway(test_stack: dict[str, Service]) -> None:
    testdb = test_stack["testdb"]
    assert "/var/lib/mysql" in testdb.get("tmpfs", [])
    assert all(mount["type"] != "volume" for mount in testdb.get("volumes", []))
