"""Real processes for the tests, the host tools and the benchmark: MariaDB, Hypercorn, nginx."""

import atexit
import contextlib
import os

import psutil
from mirakuru.base import ENV_UUID, cleanup_subprocesses


def kill_own_leftovers() -> None:
    """At exit, SIGKILL what this process's mirakuru executors left running, and nothing else:
    mirakuru 3.1's handler kills every process whose executor ID merely *contains* this pid."""
    mine = f"{os.getpid()}:"  # an executor's ID is "<pid of its creator>:<uuid>"
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get(ENV_UUID, "").startswith(mine):
                process.kill()


atexit.unregister(cleanup_subprocesses)
atexit.register(kill_own_leftovers)
