"""Zero downtime on a real single-node Docker Swarm (left again if the engine was in none): swarm.sh
deploys a stack of its own; each test checks every reply of a steady load through nginx."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import pytest

from counter.config import REPO_DIR
from harness.poll import poll_until
from harness.tools import free_port, require_docker_engine, require_tool
from http_client import Load, Reply, assert_stored_once, page_count

pytestmark = pytest.mark.docker

SCRIPT = REPO_DIR / "deploy" / "swarm" / "swarm.sh"
SECRETS = ("secret_key", "db_password", "mysql_root_password")
# The load: CLIENTS clients each for GET / and POST /api/counter (both count), a fresh connection
# PAUSE s after each reply (so 2 * CLIENTS / PAUSE a second at most; at least MIN_RATE: the cores
# are shared, but it must be a load), SETTLE s of it before and after each action.
CLIENTS, PAUSE, MIN_RATE, SETTLE, BUDGET = 8, 0.05, 25, 2.0, 100_000
DEATH_SLACK = 0.1  # Docker records a container's death a few ms after its connections broke
NOTICE = 2.0  # nginx drops a dead replica at its first failure, or the reload 2 s later
LOGGED_UPSTREAM = re.compile(r"upstream=(\S+) .*request_id=(\w+)")


def docker(*args: str, stdin: str | None = None, check: bool = True) -> str:
    """`docker <args>`'s output; AssertionError with its stderr if it fails (and `check`)."""
    command = [require_tool("docker"), *args]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 or not check, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout


@dataclass(frozen=True)
class Task:
    """One running task of a service."""

    id: str
    container: str
    address: str
    image: str


@dataclass(frozen=True)
class Stack:
    """A deployed stack: its name and the host port its nginx publishes."""

    name: str
    port: int

    def run(self, command: str, *, succeeds: bool = True, **env: str) -> str:
        """`swarm.sh <command>` for this stack: its output, once it succeeded (or failed)."""
        env = {**os.environ, "STACK_NAME": self.name, "HTTP_PORT": str(self.port), **env}
        done = subprocess.run(
            [SCRIPT, command], env=env, capture_output=True, text=True, timeout=600
        )
        output = done.stdout + done.stderr
        assert (done.returncode == 0) == succeeds, f"swarm.sh {command}:\n{output}"
        return output

    def tasks(self, service: str) -> list[Task]:
        """The service's tasks that should be running and are (healthy, for web)."""
        filters = ["--filter", "desired-state=running"]
        ids = docker("service", "ps", "-q", *filters, f"{self.name}_{service}").split()
        found: list[dict[str, Any]] = json.loads(docker("inspect", *ids)) if ids else []
        return [
            Task(
                task["ID"],
                task["Status"]["ContainerStatus"]["ContainerID"],
                task["NetworksAttachments"][0]["Addresses"][0].split("/")[0],
                task["Spec"]["ContainerSpec"]["Image"],
            )
            for task in found
            if task["Status"]["State"] == "running"
        ]

    def web_tasks(self, without: str = "") -> list[Task]:
        """Once exactly 3 web tasks run, none of them the task `without`."""

        def three_without() -> list[Task] | None:
            tasks = self.tasks("web")
            return tasks if len(tasks) == 3 and without not in {t.id for t in tasks} else None

        return poll_until(three_without, 150, "3 running web tasks", interval=0.5)

    def stored_count(self) -> int:
        """The counter row's value, read in the database's container as the app's account."""
        script = 'MYSQL_PWD="$(cat /run/secrets/mysql_password)" exec mysql -N -B -h 127.0.0.1 '
        script += '-u "$MYSQL_USER" "$MYSQL_DATABASE" -e "SELECT count FROM counter WHERE id = 1"'
        return int(docker("exec", self.tasks("db")[0].container, "sh", "-c", script))


def swarm_state() -> str:
    """The engine's swarm state: inactive, active..."""
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A fresh stack with its own secrets and port; at the end, removed with its data and the
    tests' image tags, and the engine left as it was found."""
    require_docker_engine()
    in_swarm = swarm_state() == "active"
    stack = Stack(f"swarmtest{secrets.token_hex(3)}", free_port())
    try:
        stack.run("secrets")
        stack.run("deploy")
        yield stack
    finally:
        if swarm_state() == "active":
            label = f"label=com.docker.stack.namespace={stack.name}"
            docker("stack", "rm", stack.name, check=False)
            # No drain to wait for: the data goes too.
            if containers := docker("ps", "-aq", "--filter", label).split():
                docker("rm", "-f", *containers, check=False)

            def gone() -> bool:
                listed = docker("ps", "-aq", "--filter", label)
                return not (listed + docker("network", "ls", "-q", "--filter", label)).strip()

            poll_until(gone, 60, "the stack's containers and networks gone", interval=0.5)
            docker("volume", "rm", f"{stack.name}_db-data")
            docker("secret", "rm", *(f"{stack.name}_{name}" for name in SECRETS))
            mine = f"counter-web:{stack.name}-*"  # the tests' tags; the deploy's tag stays
            if tags := docker("images", "--format", "{{.Repository}}:{{.Tag}}", mine).split():
                docker("rmi", *tags)
            if not in_swarm:
                docker("swarm", "leave", "--force")
                docker("network", "rm", "docker_gwbridge")  # `swarm init` made it; leave keeps it


def under_load(stack: Stack, name: str, action: Callable[[], None]) -> list[Reply]:
    """`action` under a steady load through nginx from SETTLE s before it to SETTLE s after it:
    the requests that failed, once each 200's number is stored once."""
    before, base = stack.stored_count(), f"http://127.0.0.1:{stack.port}"
    load = partial(Load, base, CLIENTS, BUDGET, keepalive=False, timeout=10, pause=PAUSE)
    pages, posts = load("GET", "/"), load("POST", "/api/counter")
    started = time.time()
    try:
        time.sleep(SETTLE)
        action()
        action_ended = time.time()
        time.sleep(SETTLE)
    finally:
        try:
            pages.stop()
        finally:
            posts.stop()
    seconds, replies = time.time() - started, pages.replies + posts.replies
    failed = [r for r in replies if not 200 <= r.status < 300] + pages.failures + posts.failures
    print(f"\n{name}: {len(replies)} replies in {seconds:.0f} s, failed: {len(failed)}")
    assert max(r.started for r in replies) >= action_ended, "the load stopped before the action"
    assert len(replies) / seconds >= MIN_RATE
    numbers = [page_count(r.text) for r in pages.replies if r.status == 200] + posts.counted()
    assert_stored_once(numbers, before, stack.stored_count() - before, len(failed))
    return failed


def derived_image(stack: Stack, base: str, suffix: str, line: str) -> str:
    """counter-web:<stack>-<suffix>: `base` plus one Dockerfile line (a new image ID)."""
    tag = f"counter-web:{stack.name}-{suffix}"
    docker("build", "--quiet", "--tag", tag, "-", stdin=f"FROM {base}\n{line}\n")
    return tag


def test_a_release_that_cannot_start_is_rolled_back_and_the_next_rolls_out_dropping_nothing(
    stack: Stack,
) -> None:
    current = stack.web_tasks()[0].image
    broken = derived_image(stack, current, "broken", 'CMD ["sh", "-c", "echo broken >&2; exit 1"]')
    new = derived_image(stack, current, "v2", "LABEL org.opencontainers.image.version=v2")

    def deploy_broken_then_new() -> None:
        output = stack.run("deploy", succeeds=False, WEB_IMAGE=broken)
        assert "rolled back" in output, output
        assert {task.image for task in stack.web_tasks()} == {current}
        stack.run("deploy", WEB_IMAGE=new)  # replica by replica, and a deploy after a rollback

    assert under_load(stack, "a broken release, then a new tag", deploy_broken_then_new) == []
    assert {task.image for task in stack.web_tasks()} == {new}


def test_a_killed_replica_fails_only_requests_sent_to_it(stack: Stack) -> None:
    victim, since = stack.web_tasks()[0], f"{time.time() - 5:.0f}"

    def kill_and_wait_for_a_replacement() -> None:
        docker("kill", victim.container)
        stack.web_tasks(without=victim.id)

    failed = under_load(stack, "one replica killed", kill_and_wait_for_a_replacement)
    finished = json.loads(docker("inspect", victim.container))[0]["State"]["FinishedAt"]
    died = datetime.fromisoformat(finished).timestamp()  # RFC 3339, in nanoseconds
    logs = docker("logs", "--since", since, stack.tasks("nginx")[0].container)
    upstreams = {request_id: upstream for upstream, request_id in LOGGED_UPSTREAM.findall(logs)}
    # Each one sent to the killed replica: in flight when it died, or sent before nginx knew.
    for reply in failed:
        assert upstreams.get(reply.headers.get("X-Request-ID")) == f"{victim.address}:8000", reply
        assert reply.started <= died + NOTICE, reply
        assert died <= reply.started + reply.seconds + DEATH_SLACK, reply


def test_no_secret_in_a_spec_an_environment_an_image_or_a_log(stack: Stack) -> None:
    # Last in this module: the logs then cover every deploy, rollback and kill above.
    web, db = stack.tasks("web")[0], stack.tasks("db")[0]
    values = {
        name: docker("exec", task.container, "cat", f"/run/secrets/{name}")
        for task, name in ((web, "secret_key"), (web, "db_password"), (db, "mysql_root_password"))
    }
    assert all(len(value) >= 32 for value in values.values())
    services = ("db", "web", "nginx")
    containers = [task.container for service in services for task in stack.tasks(service)]
    seen = docker("service", "inspect", *(f"{stack.name}_{service}" for service in services))
    seen += docker("inspect", *containers)
    seen += docker("history", "--no-trunc", web.image) + docker("image", "inspect", web.image)
    for container in containers:
        logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
        seen += logs.stdout + logs.stderr
    for name, value in values.items():
        assert value not in seen, f"{name}'s value is out in the open"
    given = docker("exec", web.container, "ls", "/run/secrets").split()
    assert given == ["db_password", "secret_key"], "the app never gets MySQL's root password"
