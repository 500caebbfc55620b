"""nginx/docker-entrypoint.d's reload script, run for real with stand-ins for `getent` and `nginx`
that answer from, and record in, the test's folder. .ci/run checks the real thing with Docker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

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


def test_nginx_reloads_once_per_new_set_of_replicas_and_retries_a_failed_reload(
    tmp_path: Path,
) -> None:
    log, reloads, broken = tmp_path / "script.log", tmp_path / "reloads", tmp_path / "broken"

    def answer(addresses: str) -> None:
        """Make `getent hosts web` answer with these addresses (none: name not found)."""
        (tmp_path / "hosts").write_text("".join(f"{a}      web\n" for a in addresses.split()))

    def wait_for(condition: Callable[[], bool]) -> None:
        """Poll until `condition()` holds, then let the loop run a few more rounds."""
        poll_until(condition, 5, "the reload script", interval=INTERVAL / 2)
        time.sleep(INTERVAL * 5)

    for name, text in FAKES.items():
        (tmp_path / name).write_text(f"#!/bin/sh\n{text}")
        (tmp_path / name).chmod(0o755)
    answer("10.0.0.2 10.0.0.3")
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "STATE": str(tmp_path)}
    env.update(WEB_UPSTREAM="web:8000", UPSTREAM_RECHECK_SECONDS=str(INTERVAL))
    with log.open("wb") as out:  # its own session: the loop it leaves behind is killed below
        script = subprocess.Popen(
            [SCRIPT], env=env, stdout=out, stderr=out, cwd=tmp_path, start_new_session=True
        )
    try:
        # The image's entrypoint waits for each script: it must return, leaving its loop behind.
        assert script.wait(timeout=5) == 0, log.read_text()
        # The same replicas in another order, or none (a reload would fail on "host not found").
        for addresses in ["10.0.0.3 10.0.0.2", "", "10.0.0.2 10.0.0.3"]:
            answer(addresses)
            wait_for(lambda: True)
        assert not reloads.exists()
        broken.touch()
        answer("10.0.0.2 10.0.0.9")  # one replica recreated at a new address
        wait_for(lambda: "reload failed" in log.read_text())
        broken.unlink()
        wait_for(reloads.exists)
        assert reloads.read_text() == "-s reload\n"
        assert "reloaded nginx: 10.0.0.2 10.0.0.9" in log.read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(script.pid, signal.SIGKILL)
