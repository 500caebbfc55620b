"""Finding the programs the harness runs (and a Docker engine), and free loopback ports for them."""

import os
import shutil
import socket
import subprocess
from typing import NoReturn


class MissingToolError(RuntimeError):
    """A program the harness needs is not installed."""


def find_tool(name: str) -> str:
    """The path of `name`: PATH, then the sbin folders where Debian puts servers."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise MissingToolError(f"{name} is not installed (Debian: mariadb-server, nginx, ...)")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_tool(name: str) -> str:
    """`find_tool` for tests: skip when the tool is missing, but fail under CI=true."""
    try:
        return find_tool(name)
    except MissingToolError as err:
        skip_unless_ci(str(err))


def require_docker_engine() -> str:
    """The docker CLI, once its engine answers: skip when none does, but fail under CI=true."""
    docker = require_tool("docker")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        skip_unless_ci(f"no Docker engine answers: {info.stderr.strip()}")
    return docker


def skip_unless_ci(reason: str) -> NoReturn:
    """Skip the test for `reason`; under CI=true, where everything must run, fail it instead."""
    import pytest  # only the tests call this

    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI=true requires it")
    pytest.skip(reason)
