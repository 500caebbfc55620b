"""A server process killed with SIGKILL (an OOM kill, say) must end with a failure status.

Then the supervisor (Docker's `restart:`, Swarm, Kubernetes) starts it again. Hypercorn's worker
pool hid such a death: its master stopped the other workers and exited 0, so `on-failure` never
fired. The app now runs as one Hypercorn process, its status the status of the death.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from counter.config import Settings
from harness.provision import stored_count
from harness.servers import Server, app_env, run_hypercorn, run_server
from harness.tools import free_port
from http_client import fetch

pytestmark = pytest.mark.processes

EXIT_WITHIN = 15


def serving_process(server: Server) -> psutil.Process:
    """The process that answers requests: a worker if the server has a pool, else the server."""
    top = psutil.Process(server.process.pid)
    children = [
        p for p in top.children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())
    ]
    return next(iter(children), top)


def kill_and_wait(server: Server, victim: psutil.Process) -> int:
    """SIGKILL `victim` and return the server's exit status (AssertionError if it lives on)."""
    victim.send_signal(signal.SIGKILL)
    try:
        return server.process.wait(timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {EXIT_WITHIN} s after the kill") from None


def test_a_killed_server_process_ends_the_server_with_a_failure(settings: Settings) -> None:
    with run_hypercorn(settings) as web:
        before = stored_count(settings)
        assert fetch(web.url, "/").status == 200
        assert stored_count(settings) == before + 1
        code = kill_and_wait(web, serving_process(web))
    print(f"exit status after SIGKILL: {code}")
    assert code != 0, web.log()


def test_start_sh_draining_exits_with_a_failure_when_its_server_is_killed(
    settings: Settings,
) -> None:
    # start.sh runs Hypercorn as its child when WEB_DRAIN_SECONDS > 0; `python` and `alembic`
    # come from this interpreter's folder, as in the image.
    port = free_port()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = app_env(settings, port, WEB_DRAIN_SECONDS="1", PATH=path)
    with run_server(["sh", "start.sh"], port, env) as web:
        assert fetch(web.url, "/").status == 200
        hypercorn = serving_process(web)
        assert hypercorn.pid != web.process.pid, "Hypercorn runs as start.sh's child"
        code = kill_and_wait(web, hypercorn)
    print(f"start.sh's exit status after SIGKILL of Hypercorn: {code}")
    assert code != 0, web.log()
