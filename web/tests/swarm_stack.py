"""A throwaway Swarm stack from deploy/swarm, deployed by the script `make deploy` runs."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from counter.config import REPO_DIR
from harness.poll import poll_until
from harness.tools import free_port, require_tool

SCRIPT = REPO_DIR / "deploy" / "swarm" / "swarm.sh"
SECRETS = ("secret_key", "db_password", "mysql_root_password")
LOGGED_UPSTREAM = re.compile(r"upstream=(\S+) .*request_id=(\w+)")


def docker(*args: str, timeout: float = 120, stdin: str | None = None) -> str:
    """`docker <args>`'s output; AssertionError with its stderr when it fails."""
    result = subprocess.run(
        [require_tool("docker"), *args], input=stdin, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout


def engine_state() -> str:
    """The engine's swarm state (inactive, active...); skip when no engine answers (CI: fail)."""
    require_tool("docker")
    result = subprocess.run(
        ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        message = f"no Docker engine answers: {result.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI=true requires it")
        pytest.skip(message)
    return result.stdout.strip()


def timestamp(text: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, Z) as seconds since the epoch."""
    microseconds = re.sub(r"(\.\d{6})\d*", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(microseconds).timestamp()


@dataclass(frozen=True)
class Task:
    """One running task of a service: its ID, container, address and image."""

    id: str
    container: str
    address: str
    image: str


@dataclass(frozen=True)
class Stack:
    """A deployed stack: its name and the host port its nginx publishes."""

    name: str
    port: int

    @property
    def url(self) -> str:
        """nginx's address on this host."""
        return f"http://127.0.0.1:{self.port}"

    def run(self, command: str, *, succeeds: bool = True, **env: str) -> str:
        """`deploy/swarm/swarm.sh <command>` for this stack: its output (AssertionError unless it
        succeeds or fails as expected)."""
        env = {**os.environ, "STACK_NAME": self.name, "HTTP_PORT": str(self.port), **env}
        result = subprocess.run(
            [str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=600,
            check=False,
        )  # fmt: skip
        output = result.stdout + result.stderr
        assert (result.returncode == 0) == succeeds, f"swarm.sh {command}:\n{output}"
        return output

    def tasks(self, service: str) -> list[Task]:
        """The service's tasks that should be running and are."""
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

    def wait_for_tasks(self, service: str, count: int, within: float = 120) -> list[Task]:
        """Once exactly `count` tasks run (Swarm counts a task running once it is healthy)."""

        def running() -> list[Task]:
            tasks = self.tasks(service)
            return tasks if len(tasks) == count else []

        return poll_until(running, within, f"{count} running {service} tasks", interval=1)

    def stored_count(self) -> int:
        """The counter row's value, read in the database's container as the app's account."""
        query = "SELECT count FROM counter WHERE id = 1"
        script = 'MYSQL_PWD="$(cat /run/secrets/mysql_password)" exec mysql -N -B -h 127.0.0.1 '
        script += f'-u "$MYSQL_USER" "$MYSQL_DATABASE" -e "{query}"'
        return int(docker("exec", self.tasks("db")[0].container, "sh", "-c", script))

    def upstreams(self, since: float) -> dict[str, str]:
        """Request ID -> the app's address that nginx sent it to, from its access log."""
        logs = docker("logs", "--since", f"{since:.0f}", self.tasks("nginx")[0].container)
        return {m[2]: m[1] for m in LOGGED_UPSTREAM.finditer(logs)}

    def remove(self) -> None:
        """The stack, its volume and secrets, once its containers are gone."""
        subprocess.run(["docker", "stack", "rm", self.name], capture_output=True, check=False)
        label = f"label=com.docker.stack.namespace={self.name}"
        poll_until(lambda: not docker("ps", "-aq", "--filter", label).strip(), 60,
                   "the stack's containers gone", interval=1)  # fmt: skip
        poll_until(lambda: not docker("network", "ls", "-q", "--filter", label).strip(), 60,
                   "the stack's network gone", interval=1)  # fmt: skip
        docker("volume", "rm", f"{self.name}_db-data")
        docker("secret", "rm", *(f"{self.name}_{name}" for name in SECRETS))
        # The tests' own tags (counter-web:<stack>-v2...); the deploy's content-named tag stays.
        ours = f"counter-web:{self.name}-*"
        tags = docker("images", "--format", "{{.Repository}}:{{.Tag}}", ours)
        if tags.split():
            docker("rmi", *tags.split())


@contextmanager
def swarm_stack() -> Iterator[Stack]:
    """A fresh stack on a free port, with its own secrets; the engine left as it was found."""
    in_swarm = engine_state() == "active"
    stack = Stack(f"swarmtest{secrets.token_hex(3)}", free_port())
    try:
        stack.run("secrets")
        stack.run("deploy")
        yield stack
    finally:
        if engine_state() == "active":
            stack.remove()
            if not in_swarm:
                docker("swarm", "leave", "--force")
                # `swarm init` made it; leaving keeps it.
                docker("network", "rm", "docker_gwbridge")
