"""Zero downtime on a real single-node Docker Swarm (left again if the engine was in none):
deploy/swarm/swarm.sh deploys the stack under its own name, secrets and port; each test checks
every reply of a steady load through nginx and prints its figures (`pytest -s`)."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from counter.config import REPO_DIR
from harness.poll import poll_until
from harness.tools import free_port, require_docker_engine, require_tool
from http_client import assert_stored_once, page_count

pytestmark = pytest.mark.docker

SCRIPT = REPO_DIR / "deploy" / "swarm" / "swarm.sh"
SECRETS = ("secret_key", "db_password", "mysql_root_password")
# Requests a second asked for (alternating GET / and POST /api/counter, both count) and at least
# answered (the cores are shared, but it must be a load), by this many threads; seconds of load
# before and after each action, and the hard bound on one load.
RATE, MIN_RATE, CLIENTS, SETTLE, MAX_SECONDS = 300, 25, 16, 2.0, 300.0
# Docker records a container's death a few milliseconds after its connections broke.
DEATH_SLACK = 0.1
LOGGED_UPSTREAM = re.compile(r"upstream=(\S+) .*request_id=(\w+)")


def docker(*args: str, timeout: float = 120, stdin: str | None = None) -> str:
    """`docker <args>`'s output; AssertionError with its stderr when it fails."""
    command = [require_tool("docker"), *args]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
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
        ids = docker("service", "ps", "-q", "--filter", "desired-state=running",
                     f"{self.name}_{service}").split()  # fmt: skip
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
        return poll_until(
            lambda: len(tasks := self.tasks("web")) == 3
            and without not in {task.id for task in tasks} and tasks,
            MAX_SECONDS / 2, "3 running web tasks", interval=0.5,
        )  # fmt: skip

    def stored_count(self) -> int:
        """The counter row's value, read in the database's container as the app's account."""
        script = 'MYSQL_PWD="$(cat /run/secrets/mysql_password)" exec mysql -N -B -h 127.0.0.1 '
        script += '-u "$MYSQL_USER" "$MYSQL_DATABASE" -e "SELECT count FROM counter WHERE id = 1"'
        return int(docker("exec", self.tasks("db")[0].container, "sh", "-c", script))


def engine_state() -> str:
    """The engine's swarm state: inactive, active..."""
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A fresh stack with its own secrets and port; at the end, removed with its data and the
    tests' image tags, and the engine left as it was found."""
    require_docker_engine()
    in_swarm = engine_state() == "active"
    stack = Stack(f"swarmtest{secrets.token_hex(3)}", free_port())
    try:
        stack.run("secrets")
        stack.run("deploy")
        yield stack
    finally:
        if engine_state() == "active":
            label = f"label=com.docker.stack.namespace={stack.name}"
            subprocess.run(["docker", "stack", "rm", stack.name], capture_output=True)
            # No drain to wait for: the data goes too.
            if containers := docker("ps", "-aq", "--filter", label).split():
                subprocess.run(["docker", "rm", "-f", *containers], capture_output=True)
            listings = (["ps", "-aq"], ["network", "ls", "-q"])
            poll_until(lambda: not any(docker(*ls, "--filter", label).strip() for ls in listings),
                       60, "the stack's containers and networks gone", interval=0.5)  # fmt: skip
            docker("volume", "rm", f"{stack.name}_db-data")
            docker("secret", "rm", *(f"{stack.name}_{name}" for name in SECRETS))
            tags = docker(
                "images", "--format", "{{.Repository}}:{{.Tag}}", f"counter-web:{stack.name}-*"
            )
            if tags.split():  # the tests' own; the deploy's content-named tag stays
                docker("rmi", *tags.split())
            if not in_swarm:
                docker("swarm", "leave", "--force")
                docker("network", "rm", "docker_gwbridge")  # `swarm init` made it; leave keeps it


@dataclass(frozen=True)
class Outcome:
    """One request: when it ran (wall clock, as Docker's), status (0: no whole reply), number."""

    started: float
    ended: float
    status: int
    number: int | None = None
    request_id: str = ""
    error: str = ""


def send(port: int, method: str, path: str) -> Outcome:
    """One counting request on a fresh connection; no answer, or half of one, is an Outcome too."""
    conn, started = http.client.HTTPConnection("127.0.0.1", port, timeout=10), time.time()
    status, request_id = 0, ""
    try:
        conn.request(method, path)
        response = conn.getresponse()
        status, request_id = response.status, response.headers.get("X-Request-ID", "")
        body = response.read()
    except (OSError, http.client.HTTPException) as err:
        # A reply cut short (the app died mid-body) is a failure whatever its status line said.
        return Outcome(started, time.time(), 0, None, request_id, repr(err))
    finally:
        conn.close()
    if status != 200:
        return Outcome(started, time.time(), status, None, request_id)
    number = page_count(body.decode()) if method == "GET" else json.loads(body)["count"]
    return Outcome(started, time.time(), status, number, request_id)


@dataclass(frozen=True)
class Run:
    """A load around one action: every reply, when it started, the count before and its growth."""

    outcomes: list[Outcome]
    started: float
    before: int
    stored: int

    def failures(self) -> list[Outcome]:
        """Every request that got no 2xx reply."""
        return [o for o in self.outcomes if not 200 <= o.status < 300]

    def assert_stored_once(self, lost_replies: int = 0) -> None:
        """Each 200's number is distinct and stored; the count grew by the 200s (plus at most the
        requests whose reply was lost, which the app may have stored)."""
        numbers = [o.number for o in self.outcomes if o.status == 200 and o.number is not None]
        assert_stored_once(numbers, self.before, self.stored, lost_replies)


def under_load(stack: Stack, name: str, action: Callable[[], None]) -> Run:
    """`action` with a steady load from SETTLE s before it until SETTLE s after it: CLIENTS
    threads, each pacing itself to RATE/CLIENTS requests a second."""
    outcomes: list[Outcome] = []
    before, stop = stack.stored_count(), threading.Event()
    interval, deadline = CLIENTS / RATE, time.monotonic() + MAX_SECONDS

    def client(index: int) -> None:
        next_at, sent = time.monotonic() + interval * index / CLIENTS, index
        while time.monotonic() < deadline:
            # Behind schedule (a slow reply), send at once rather than in a burst later.
            next_at = max(next_at + interval, time.monotonic())
            if stop.wait(max(0.0, next_at - time.monotonic())):
                return
            outcomes.append(send(stack.port, *(("GET", "/"), ("POST", "/api/counter"))[sent % 2]))
            sent += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    started = time.time()
    for thread in threads:
        thread.start()
    try:
        time.sleep(SETTLE)
        action_started = time.time()
        action()
        action_ended = time.time()
        time.sleep(SETTLE)
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
    seconds, latencies = time.time() - started, sorted(o.ended - o.started for o in outcomes)
    print(
        f"\n{name}: {len(outcomes)} requests in {seconds:.0f} s ({len(outcomes) / seconds:.0f}/s), "
        f"action {action_ended - action_started:.0f} s, non-2xx or no reply: "
        f"{sum(not 200 <= o.status < 300 for o in outcomes)}, latency p50 "
        f"{latencies[len(latencies) // 2]:.3f} s, max {latencies[-1]:.3f} s"
    )
    assert max(o.started for o in outcomes) >= action_ended, "the load stopped before the action"
    assert len(outcomes) / seconds >= MIN_RATE
    return Run(outcomes, started, before, stack.stored_count() - before)


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
    others = {service: stack.tasks(service) for service in ("db", "nginx")}

    def deploy_broken_then_new() -> None:
        output = stack.run("deploy", succeeds=False, WEB_IMAGE=broken)
        assert "rolled back" in output, output
        assert {task.image for task in stack.web_tasks()} == {current}
        stack.run("deploy", WEB_IMAGE=new)  # replica by replica, and a deploy after a rollback

    run = under_load(stack, "release that cannot start, then a new tag", deploy_broken_then_new)
    assert {task.image for task in stack.web_tasks()} == {new}
    # The same command, the rest unchanged: db and nginx keep their tasks.
    assert {service: stack.tasks(service) for service in others} == others
    assert run.failures() == []
    run.assert_stored_once()


def test_a_killed_replica_fails_only_the_requests_it_held(stack: Stack) -> None:
    victim = stack.web_tasks()[0]

    def kill_and_wait_for_a_replacement() -> None:
        docker("kill", victim.container)
        stack.web_tasks(without=victim.id)

    run = under_load(stack, "one replica killed", kill_and_wait_for_a_replacement)
    died = timestamp(json.loads(docker("inspect", victim.container))[0]["State"]["FinishedAt"])
    since = f"{run.started - 5:.0f}"
    logs = docker("logs", "--since", since, stack.tasks("nginx")[0].container)
    upstreams = {m[2]: m[1] for m in LOGGED_UPSTREAM.finditer(logs)}
    held = {
        o.request_id
        for o in run.outcomes
        if upstreams.get(o.request_id) == f"{victim.address}:8000"
        and o.started <= died <= o.ended + DEATH_SLACK
    }
    failures = run.failures()
    print(f"failed: {len(failures)}; in flight on the killed replica when it died: {len(held)}")
    assert not [o for o in failures if o.request_id not in held]
    run.assert_stored_once(lost_replies=len(failures))


def timestamp(text: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, Z) as seconds since the epoch."""
    microseconds = re.sub(r"(\.\d{6})\d*", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(microseconds).timestamp()


def test_no_secret_in_a_spec_an_environment_an_image_or_a_log(stack: Stack) -> None:
    # Last in this module: the logs then cover every deploy, rollback and kill above.
    web, db = stack.tasks("web")[0], stack.tasks("db")[0]
    values = {
        name: docker("exec", task.container, "cat", f"/run/secrets/{name}")
        for task, name in ((web, "secret_key"), (web, "db_password"), (db, "mysql_root_password"))
    }
    assert all(len(value) >= 32 for value in values.values())
    services = [f"{stack.name}_{service}" for service in ("db", "web", "nginx")]
    containers = [
        task.container for service in ("db", "web", "nginx") for task in stack.tasks(service)
    ]
    seen = [
        docker("service", "inspect", *services),
        docker("inspect", *containers),
        docker("history", "--no-trunc", web.image),
        docker("image", "inspect", web.image),
    ]
    for container in containers:
        result = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
        seen += [result.stdout, result.stderr]
    for name, value in values.items():
        assert not any(value in text for text in seen), f"{name}'s value is out in the open"
    # The app never gets MySQL's root password.
    spec = json.loads(docker("service", "inspect", f"{stack.name}_web"))[0]["Spec"]
    given = {secret["SecretName"] for secret in spec["TaskTemplate"]["ContainerSpec"]["Secrets"]}
    assert given == {f"{stack.name}_secret_key", f"{stack.name}_db_password"}
