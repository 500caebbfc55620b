"""nginx/docker-entrypoint.d's reload script: nginx follows the app's replicas as they change.

The script runs for real (sh, awk, sort, sleep); `getent` and `nginx` are stand-ins on PATH that
answer from, and record in, the test's folder. .ci/run checks the real thing with Docker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from counter.config import REPO_DIR
from harness.poll import poll_until
from harness.servers import TEMPLATES

# Like TEMPLATES: the test container mounts the repository's nginx/ folder (NGINX_TEMPLATES).
SCRIPT = TEMPLATES.parent / "docker-entrypoint.d" / "40-reload-on-upstream-change.sh"
INTERVAL = 0.1
FAKES = {  # getent: $STATE/hosts, as Docker's DNS would answer; nginx: fails while $STATE/broken
    "getent": '[ "$1 $2" = "hosts web" ] && [ -s "$STATE/hosts" ] && exec cat "$STATE/hosts"\n'
    "exit 2\n",
    "nginx": '[ -e "$STATE/broken" ] && exit 1\necho "$*" >> "$STATE/reloads"\n',
}


def answer(state: Path, addresses: str) -> None:
    """Make `getent hosts web` answer with these addresses (none: name not found)."""
    (state / "hosts").write_text("".join(f"{a}      web\n" for a in addresses.split()))


def reloads(state: Path) -> list[str]:
    """Every successful `nginx ...` call so far."""
    path = state / "reloads"
    return path.read_text().splitlines() if path.exists() else []


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll until `condition()` holds, then let the loop run a few more rounds."""
    poll_until(condition, 5, "the reload script", interval=INTERVAL / 2)
    time.sleep(INTERVAL * 5)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """The script started as the image's entrypoint starts it, answering two replicas; its loop
    killed at the end."""
    for name, text in FAKES.items():
        (tmp_path / name).write_text(f"#!/bin/sh\n{text}")
        (tmp_path / name).chmod(0o755)
    answer(tmp_path, "10.0.0.2 10.0.0.3")
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "STATE": str(tmp_path),
           "WEB_UPSTREAM": "web:8000", "UPSTREAM_RECHECK_SECONDS": str(INTERVAL)}  # fmt: skip
    with (tmp_path / "script.log").open("wb") as log:
        # Its own session: the background loop stays in this process group, killed below.
        script = subprocess.Popen([str(SCRIPT)], env=env, stdout=log, stderr=log, cwd=tmp_path,
                                  start_new_session=True)  # fmt: skip
    try:
        # The entrypoint waits for each script: it must return at once, leaving the loop behind.
        assert script.wait(timeout=5) == 0, (tmp_path / "script.log").read_text()
        yield tmp_path
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(script.pid, signal.SIGKILL)


def test_script_is_executable_in_the_repository() -> None:
    # The image's entrypoint skips a script without the x bit; a bind mount keeps the file's mode.
    assert os.access(SCRIPT, os.X_OK)
    if (REPO_DIR / ".git").exists():
        git = ["git", "-C", str(REPO_DIR), "ls-files", "--stage", str(SCRIPT)]
        staged = subprocess.run(git, capture_output=True, text=True, check=True).stdout
        assert not staged or staged.startswith("100755"), staged


def test_same_replicas_in_any_order_or_none_at_all_do_not_reload(state: Path) -> None:
    # No address (every replica gone at once): a reload would fail on "host not found", so nginx
    # keeps its config; back at the same addresses, nothing changed for nginx either.
    for addresses in ["10.0.0.3 10.0.0.2", "", "10.0.0.2 10.0.0.3"]:
        answer(state, addresses)
        wait_for(lambda: True)
    assert reloads(state) == []


@pytest.mark.parametrize("change", ["10.0.0.2 10.0.0.3 10.0.0.4", "10.0.0.2 10.0.0.9"])
def test_a_new_or_recreated_replica_reloads_once(state: Path, change: str) -> None:
    answer(state, change)
    wait_for(lambda: reloads(state) == ["-s reload"])
    assert reloads(state) == ["-s reload"]
    assert change.split()[-1] in (state / "script.log").read_text()


def test_failed_reload_is_retried(state: Path) -> None:
    (state / "broken").touch()
    answer(state, "10.0.0.2")
    wait_for(lambda: "reload failed" in (state / "script.log").read_text())
    (state / "broken").unlink()
    wait_for(lambda: reloads(state) == ["-s reload"])
    assert reloads(state) == ["-s reload"]
