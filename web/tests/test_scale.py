"""nginx/docker-entrypoint.d's reload script: nginx follows the app's replicas as they change.

The script runs for real (sh, awk, sort, sleep); `getent` and `nginx` are stand-ins on PATH, so the
test controls what Docker's DNS answers and records each `nginx -s reload`. The real thing, with
Docker, is checked by the commands in .ci/run (scale, recreate, requests through nginx).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.poll import poll_until
from harness.servers import TEMPLATES

# Like TEMPLATES: the test container mounts the repository's nginx/ folder (NGINX_TEMPLATES).
SCRIPT = TEMPLATES.parent / "docker-entrypoint.d" / "40-reload-on-upstream-change.sh"
INTERVAL = 0.1
WAIT = 5.0

FAKE_GETENT = """#!/bin/sh
# getent hosts NAME: the lines of $STATE/hosts, as Docker's DNS would answer.
[ "$1" = hosts ] && [ "$2" = web ] && [ -s "$STATE/hosts" ] && exec cat "$STATE/hosts"
exit 2
"""
FAKE_NGINX = """#!/bin/sh
# nginx -s reload: recorded; fails while $STATE/broken exists (nginx not running yet).
[ -e "$STATE/broken" ] && exit 1
echo "$*" >> "$STATE/reloads"
"""


@dataclass
class Watcher:
    """The script's state folder and its background loop's log."""

    state: Path
    log: Path

    def answer(self, *addresses: str) -> None:
        """Make `getent hosts web` answer with these addresses (none: name not found)."""
        (self.state / "hosts").write_text("".join(f"{a}      web\n" for a in addresses))

    def reloads(self) -> list[str]:
        """Every successful `nginx ...` call so far."""
        path = self.state / "reloads"
        return path.read_text().splitlines() if path.exists() else []


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll until `condition()` holds, failing after WAIT seconds."""
    poll_until(condition, WAIT, "the reload script", interval=INTERVAL / 2)


def settle() -> None:
    """Long enough for several rounds of the loop."""
    time.sleep(INTERVAL * 5)


@pytest.fixture
def watcher(tmp_path: Path) -> Iterator[Watcher]:
    """The script started as the image's entrypoint starts it; its loop killed at the end."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("getent", FAKE_GETENT), ("nginx", FAKE_NGINX)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    watcher = Watcher(tmp_path, tmp_path / "script.log")
    watcher.answer("10.0.0.2", "10.0.0.3")
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STATE": str(tmp_path),
        "WEB_UPSTREAM": "web:8000",
        "UPSTREAM_RECHECK_SECONDS": str(INTERVAL),
    }
    with watcher.log.open("wb") as log:
        # Its own session: the background loop stays in this process group, killed below.
        script = subprocess.Popen(
            [str(SCRIPT)], env=env, stdout=log, stderr=log, cwd=tmp_path, start_new_session=True
        )
    try:
        # The entrypoint waits for each script: it must return at once, leaving the loop behind.
        assert script.wait(timeout=WAIT) == 0, watcher.log.read_text()
        yield watcher
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(script.pid, signal.SIGKILL)


def test_script_is_executable_in_the_repository() -> None:
    # The image's entrypoint skips a script without the x bit; a bind mount keeps the file's mode.
    assert os.access(SCRIPT, os.X_OK)
    if (TEMPLATES.parents[1] / ".git").exists():
        staged = subprocess.run(
            ["git", "ls-files", "--stage", str(SCRIPT)],
            cwd=TEMPLATES.parents[1],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        assert not staged or staged.startswith("100755"), staged


def test_same_replicas_in_any_order_do_not_reload(watcher: Watcher) -> None:
    settle()
    watcher.answer("10.0.0.3", "10.0.0.2")
    settle()
    assert watcher.reloads() == []


def test_new_replica_reloads_once(watcher: Watcher) -> None:
    watcher.answer("10.0.0.2", "10.0.0.3", "10.0.0.4")
    wait_for(lambda: watcher.reloads() == ["-s reload"])
    settle()
    assert watcher.reloads() == ["-s reload"]
    assert "10.0.0.4" in watcher.log.read_text()


def test_recreated_replica_with_a_new_address_reloads(watcher: Watcher) -> None:
    watcher.answer("10.0.0.2", "10.0.0.9")
    wait_for(lambda: watcher.reloads() == ["-s reload"])


def test_no_address_keeps_the_running_config(watcher: Watcher) -> None:
    # Every replica gone at once: a reload would fail on "host not found"; nginx keeps its config.
    watcher.answer()
    settle()
    assert watcher.reloads() == []
    # When they are back at the same addresses, nothing changed for nginx either.
    watcher.answer("10.0.0.2", "10.0.0.3")
    settle()
    assert watcher.reloads() == []


def test_failed_reload_is_retried(watcher: Watcher) -> None:
    (watcher.state / "broken").touch()
    watcher.answer("10.0.0.2")
    wait_for(lambda: "reload failed" in watcher.log.read_text())
    (watcher.state / "broken").unlink()
    wait_for(lambda: watcher.reloads() == ["-s reload"])
    settle()
    assert watcher.reloads() == ["-s reload"]
