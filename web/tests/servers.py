"""Real server processes for tests: free loopback ports, Hypercorn on the app, readiness waits."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from counter.config import Settings

WEB_DIR = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


@dataclass
class RunningServer:
    """A started process, where it answers and where its output goes."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")


def require_tool(name: str) -> str:
    """The path of `name` (PATH, then the sbin folders where Debian puts servers); skip when it is
    missing, but fail under CI=true, where every tool the suite uses must be installed."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        message = f"{name} is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI=true requires it")
        pytest.skip(message)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that make a child process load exactly `settings`."""
    return {
        "QUART_ENV": settings.environment,
        "SECRET_KEY": settings.secret_key,
        "DB_HOST": settings.db_host,
        "DB_PORT": str(settings.db_port),
        "DB_USERNAME": settings.db_username,
        "DB_PASSWORD": settings.db_password,
        "DATABASE_NAME": settings.database_name,
        "DB_POOL_SIZE": str(settings.db_pool_size),
        "DB_CONNECT_TIMEOUT": str(settings.db_connect_timeout),
        "DB_STARTUP_TIMEOUT": str(settings.db_startup_timeout),
    }


def wait_for_http(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `url` until it answers at all (any status), failing early if `process` dies."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own http:// URL)
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {START_TIMEOUT} s")


@contextmanager
def started(
    command: list[str], url: str, ready_path: str, env: Mapping[str, str], cwd: Path = WEB_DIR
) -> Iterator[RunningServer]:
    """Run `command` until the block ends, once `url + ready_path` answers; always stop it."""
    with tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = RunningServer(process, url, log_path)
    try:
        try:
            wait_for_http(url + ready_path, process)
        except (RuntimeError, TimeoutError) as err:
            raise RuntimeError(f"{err}\n--- output ---\n{server.log()}") from None
        yield server
    finally:
        stop(process)
        log_path.unlink(missing_ok=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a bounded wait, then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def hypercorn_command(app: str = "manage:app") -> list[str]:
    """Hypercorn exactly as production runs it, from the same config file."""
    return [sys.executable, "-m", "hypercorn", "--config", "file:hypercorn_conf.py", app]


def server_env(settings: Settings, port: int, workers: int = 1, **extra: str) -> dict[str, str]:
    """This process's environment plus exactly `settings`, serving on 127.0.0.1:`port`."""
    return {
        **os.environ,
        **settings_env(settings),
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_WORKERS": str(workers),
        **extra,
    }


@contextmanager
def run_hypercorn(
    settings: Settings,
    workers: int = 1,
    extra_env: Mapping[str, str] | None = None,
    app: str = "manage:app",
) -> Iterator[RunningServer]:
    """Hypercorn serving `app` for `settings` on a free loopback port."""
    port = free_port()
    env = server_env(settings, port, workers, **(extra_env or {}))
    with started(hypercorn_command(app), f"http://127.0.0.1:{port}", "/healthz", env) as server:
        yield server
