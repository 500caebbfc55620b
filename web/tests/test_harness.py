"""The harness itself: one tool's exit never kills a server another process started."""

from __future__ import annotations

import subprocess
import sys

from harness.provision import WEB_DIR
from harness.tools import require_tool, skip_unless_ci

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
    command = [require_tool("unshare"), "--pid", "--fork", "--mount-proc", sys.executable, "-c"]
    result = subprocess.run(
        [*command, SCRIPT], cwd=WEB_DIR, capture_output=True, text=True, timeout=60
    )
    if "Operation not permitted" in result.stderr:  # not root: no PID namespace here
        skip_unless_ci(f"unshare: {result.stderr.strip()}")
    assert result.stdout.strip() == "alive", result
