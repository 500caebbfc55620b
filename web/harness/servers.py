"""Hypercorn and nginx as real processes on free loopback ports (mirakuru executors), configured
as in production: hypercorn_conf.py and `manage:app`; the nginx template through `envsubst`."""

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mirakuru
from mirakuru.exceptions import ProcessFinishedWithError

from counter.config import REPO_DIR, Settings
from harness.provision import WEB_DIR
from harness.tools import find_tool, free_port

# NGINX_TEMPLATES: where the test container mounts the repository's nginx/templates.
TEMPLATES = Path(os.environ.get("NGINX_TEMPLATES") or REPO_DIR / "nginx" / "templates")
TEMPLATE = TEMPLATES / "default.conf.template"
MAIN_CONFIG = TEMPLATES.parent / "nginx.conf"
HYPERCORN = [sys.executable, "-m", "hypercorn", "--config", "file:hypercorn_conf.py"]


@dataclass
class Server:
    """A started process, where it answers, and where its output goes."""

    executor: mirakuru.HTTPExecutor
    url: str
    netloc: str  # host:port, as an nginx upstream or a Prometheus target names it
    log_path: Path

    @property
    def process(self) -> subprocess.Popen[str]:
        """The process itself, to signal or wait for."""
        assert self.executor.process is not None, "not running"
        return self.executor.process

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_server(
    command: Sequence[str], port: int, env: Mapping[str, str], cwd: Path = WEB_DIR
) -> Iterator[Server]:
    """Run `command` once http://127.0.0.1:`port`/healthz answers (any status); always stop it."""
    with tempfile.TemporaryDirectory(prefix="server-") as tmp, open(f"{tmp}/out", "w") as out:
        netloc = f"127.0.0.1:{port}"
        url = f"http://{netloc}"
        executor = mirakuru.HTTPExecutor(
            list(command), f"{url}/healthz", status=r"\d{3}", method="GET", envvars=dict(env),
            cwd=str(cwd), timeout=60, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        server = Server(executor, url, netloc, Path(out.name))
        try:
            executor.start()
        except (mirakuru.ProcessExitedWithError, mirakuru.TimeoutExpired) as err:
            raise RuntimeError(f"{err}\n--- output ---\n{server.log()}") from None
        try:
            yield server
        finally:
            with contextlib.suppress(ProcessFinishedWithError):  # a test may have killed it
                executor.stop()


def app_env(settings: Settings, port: int, **extra: str) -> dict[str, str]:
    """Exactly `settings` (plus `extra`), serving on 127.0.0.1:`port`."""
    return {**settings.to_env(), "WEB_BIND": f"127.0.0.1:{port}", **extra}


@contextmanager
def run_hypercorn(settings: Settings, app: str = "manage:app", **extra: str) -> Iterator[Server]:
    """Hypercorn serving `app` for `settings` on a free loopback port."""
    port = free_port()
    with run_server([*HYPERCORN, app], port, app_env(settings, port, **extra)) as server:
        yield server


def render_site(upstreams: Sequence[str], listen: str, access_log: Path) -> str:
    """The template through `envsubst '$WEB_UPSTREAM ...'`; one `server` line per upstream."""
    env = {"WEB_UPSTREAM": upstreams[0], "NGINX_PORT": listen, "NGINX_ACCESS_LOG": str(access_log)}
    site = subprocess.run(
        [find_tool("envsubst"), " ".join(f"${{{name}}}" for name in env)],
        input=TEMPLATE.read_text(), env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(line for line in site.splitlines() if f"server {upstreams[0]}" in line)
    return site.replace(line, "\n".join(line.replace(upstreams[0], u) for u in upstreams))


def main_config(directory: Path, production: bool) -> str:
    """nginx.conf writing under `directory`; sized as nginx/nginx.conf if `production`, or small."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # else workers run as nobody
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = "".join(f"{kind}_temp_path {directory}/{kind};" for kind in kinds)
    sizes = {"worker_processes": "1", "worker_connections": "128"}
    if production:
        sizes = dict(re.findall(r"^\s*(worker_\w+)\s+(\S+);", MAIN_CONFIG.read_text(), re.M))
    return (
        f"{user}daemon off; pid {directory}/nginx.pid; error_log stderr warn;\n"
        f"worker_processes {sizes['worker_processes']};\n"
        f"events {{ worker_connections {sizes['worker_connections']}; }}\n"
        f"http {{ {temp} include {directory}/default.conf; }}\n"
    )


@dataclass
class Nginx(Server):
    """A started nginx, and the folder that holds its config and access log."""

    directory: Path

    def access_log(self) -> list[str]:
        """The access log's lines so far (the template's `proxied` format)."""
        return (self.directory / "access.log").read_text(errors="replace").splitlines()


@contextmanager
def run_nginx(upstreams: Sequence[str], production: bool = False) -> Iterator[Nginx]:
    """nginx on a free port proxying to `upstreams` ("host:port" each), until the block ends."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="nginx-") as tmp:
        directory = Path(tmp)
        site = render_site(upstreams, f"127.0.0.1:{port}", directory / "access.log")
        (directory / "default.conf").write_text(site)
        (directory / "nginx.conf").write_text(main_config(directory, production))
        command = [find_tool("nginx"), "-p", f"{tmp}/", "-e", "stderr", "-c", f"{tmp}/nginx.conf"]
        with run_server(command, port, {}, directory) as server:
            yield Nginx(server.executor, server.url, server.netloc, server.log_path, directory)
