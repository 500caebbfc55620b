"""The harness itself: one tool's exit never kills a server another process started."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.provision import WEB_DIR
from harness.tools import require_tool

# In a PID namespace, as in a container: small pids, as make test's container has.
SCRIPT = """
import subprocess, sys
from mirakuru import SimpleExecutor
import harness
server = SimpleExecutor(["sleep", "30"]).start()
for _ in range(10):  # tools that use the harness come and go, as in a test run
    subprocess.run([sys.executable, "-c", "import harness.mariadb"], check=True)
print("alive" if server.running() else "killed")
server.stop()
"""


def test_an_exiting_tool_leaves_other_processes_servers_alone() -> None:
    as_user = [] if os.geteuid() == 0 else ["--map-root-user"]  # a user namespace, where allowed
    command = [require_tool("unshare"), *as_user, "--pid", "--fork", "--mount-proc"]
    command += [sys.executable, "-c", SCRIPT]
    result = subprocess.run(command, cwd=WEB_DIR, capture_output=True, text=True, timeout=60)
    if "Operation not permitted" in result.stderr:  # e.g. a CI runner's user, without root
        pytest.skip(f"no PID namespace here: {result.stderr.strip()}")
    assert result.stdout.strip() == "alive", result
