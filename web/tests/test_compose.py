"""The compose files as the real `docker compose` binary reads them (no containers are started)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest
from dotenv import dotenv_values

from nginx_runner import REPO_DIR
from servers import require_tool

pytestmark = pytest.mark.docker

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


def test_stacks_have_separate_project_names() -> None:
    assert resolved(DEV)["name"] != resolved(TEST)["name"]


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


def test_nginx_follows_the_web_replicas(dev: dict[str, Service]) -> None:
    nginx = dev["nginx"]
    mounts = {mount["target"]: mount for mount in nginx["volumes"]}
    script = mounts["/docker-entrypoint.d/40-reload-on-upstream-change.sh"]
    assert script["source"] == str(
        REPO_DIR / "nginx" / "docker-entrypoint.d" / "40-reload-on-upstream-change.sh"
    )
    assert script["read_only"] is True
    # One file: mounting the folder would hide the image's own entrypoint scripts.
    assert "/docker-entrypoint.d" not in mounts
    # The script watches the host part of the same upstream the template proxies to.
    assert nginx["environment"]["WEB_UPSTREAM"].split(":")[0] in dev
    assert float(nginx["environment"]["UPSTREAM_RECHECK_SECONDS"]) > 0
    assert nginx["environment"]["NGINX_ACCESS_LOG"] == "/var/log/nginx/access.log"


def test_dev_stack_serves_the_working_tree_with_reload(dev: dict[str, Service]) -> None:
    web = dev["web"]
    mounts = {mount["target"]: mount for mount in web.get("volumes", [])}
    for target, source in (("/app/counter", "counter"), ("/app/migrations", "migrations")):
        assert mounts[target]["type"] == "bind"
        assert mounts[target]["source"] == str(REPO_DIR / "web" / source)
        # The app must not be able to rewrite its own code, even in development.
        assert mounts[target]["read_only"] is True
    # hypercorn_conf.py reloads only with both.
    assert web["environment"]["WEB_RELOAD"] == "1"
    assert web["environment"]["QUART_ENV"] == "development"


def test_production_image_never_reloads() -> None:
    # The image is what production runs: no reload switch baked in, a numeric non-root user.
    dockerfile = (REPO_DIR / "web" / "Dockerfile").read_text()
    runtime = dockerfile[dockerfile.index("AS runtime") :]
    assert "WEB_RELOAD" not in dockerfile
    assert "--reload" not in dockerfile
    assert "USER 10001:10001" in runtime
    assert 'CMD ["/app/docker-entrypoint.sh"]' in runtime


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


def test_db_keeps_data_in_a_named_volume(dev: dict[str, Service]) -> None:
    mounts = {mount["target"]: mount for mount in dev["db"]["volumes"]}
    assert mounts["/var/lib/mysql"]["type"] == "volume"
    assert mounts["/etc/mysql/conf.d"]["source"] == str(REPO_DIR / "db" / "conf.d")


def test_nginx_renders_the_project_template(dev: dict[str, Service]) -> None:
    nginx = dev["nginx"]
    mounts = {mount["target"]: mount for mount in nginx["volumes"]}
    assert mounts["/etc/nginx/templates"]["source"] == str(REPO_DIR / "nginx" / "templates")
    assert nginx["environment"]["WEB_UPSTREAM"] == "web:8000"


def test_test_db_is_throwaway(test_stack: dict[str, Service]) -> None:
    testdb = test_stack["testdb"]
    assert "/var/lib/mysql" in testdb.get("tmpfs", [])
    assert all(mount["type"] != "volume" for mount in testdb.get("volumes", []))


def test_test_runner_targets_the_test_db(test_stack: dict[str, Service]) -> None:
    runner = test_stack["test"]
    assert runner["build"]["target"] == "test"
    assert runner["environment"]["DB_HOST"] == "testdb"
    # The test utility creates its throwaway database as root.
    assert runner["environment"]["MYSQL_ROOT_PASSWORD"]
    # tests/test_nginx.py and tests/test_scale.py read nginx/ (template, reload script) here.
    mounts = {mount["target"]: mount for mount in runner["volumes"]}
    assert mounts["/nginx"]["source"] == str(REPO_DIR / "nginx")
    assert runner["environment"]["NGINX_TEMPLATES"] == "/nginx/templates"
