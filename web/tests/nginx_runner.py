"""A real host nginx on the project's template: rendered as the image does, run in a temp dir."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from servers import RunningServer, free_port, require_tool, started

REPO_DIR = Path(__file__).resolve().parents[2]
# NGINX_TEMPLATES: where the test container (docker-compose.test.yml) mounts the repository's
# nginx/templates, since its image holds web/ only.
TEMPLATES = Path(os.environ.get("NGINX_TEMPLATES") or REPO_DIR / "nginx" / "templates")
TEMPLATE = TEMPLATES / "default.conf.template"
MIME_TYPES = Path("/etc/nginx/mime.types")
# The access log's file name inside the run's temp dir (RunningNginx.access_log reads it).
ACCESS_LOG = "access.log"
# $NAME and ${NAME}: the two forms envsubst replaces.
ENV_REFERENCE = re.compile(r"\$(?:\{(?P<braced>\w+)\}|(?P<bare>\w+))")


def render(variables: Mapping[str, str], template: Path = TEMPLATE) -> str:
    """The template with `variables` substituted, like envsubst with a list of defined names.

    The official image passes envsubst only the variables set in its environment, so nginx's own
    $host, $remote_addr... come through untouched; anything else is left alone here too.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        return variables.get(name, match[0])

    return ENV_REFERENCE.sub(substitute, template.read_text())


def main_config(directory: Path, site_config: Path, production: bool = False) -> str:
    """A complete nginx.conf whose every writable path is under `directory`, for a non-root run.

    `production` sizes it like the official image's nginx.conf (a worker per core, 1024
    connections each), for the benchmark; tests need one small worker.
    """
    # As root, nginx's workers would switch to `nobody`, who cannot read a mkdtemp directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    mime = f"    include {MIME_TYPES};\n" if MIME_TYPES.is_file() else ""
    return (
        f"{user}"
        "daemon off;\n"
        f"worker_processes {'auto' if production else 1};\n"
        f"pid {directory}/nginx.pid;\n"
        "error_log stderr warn;\n"
        f"events {{ worker_connections {1024 if production else 128}; }}\n"
        "http {\n"
        f"{mime}"
        f"    client_body_temp_path {directory}/client_body;\n"
        f"    proxy_temp_path {directory}/proxy;\n"
        f"    fastcgi_temp_path {directory}/fastcgi;\n"
        f"    uwsgi_temp_path {directory}/uwsgi;\n"
        f"    scgi_temp_path {directory}/scgi;\n"
        f"    include {site_config};\n"
        "}\n"
    )


def write_config(directory: Path, upstream: str, port: int, production: bool = False) -> Path:
    """Render the site for `upstream` on `port` into `directory`; return the main config's path."""
    site = directory / "default.conf"
    variables = {
        "WEB_UPSTREAM": upstream,
        "NGINX_PORT": f"127.0.0.1:{port}",
        "NGINX_ACCESS_LOG": str(directory / ACCESS_LOG),
    }
    site.write_text(render(variables))
    main = directory / "nginx.conf"
    main.write_text(main_config(directory, site, production))
    return main


def nginx_command(nginx: str, directory: Path, config: Path, *args: str) -> list[str]:
    """nginx with its prefix and start-up error log in `directory` (the defaults need root)."""
    return [nginx, "-p", f"{directory}/", "-e", "stderr", "-c", str(config), *args]


@dataclass
class RunningNginx(RunningServer):
    """A started nginx, and the folder that holds its config and access log."""

    directory: Path

    def access_log(self) -> list[str]:
        """The access log's lines so far (the template's `proxied` format)."""
        return (self.directory / ACCESS_LOG).read_text(errors="replace").splitlines()


@contextmanager
def run_nginx(
    upstream: str, port: int | None = None, production: bool = False
) -> Iterator[RunningNginx]:
    """nginx in the foreground, proxying to `upstream` ("host:port"), until the block ends."""
    nginx = require_tool("nginx")
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="nginx-") as tmp:
        directory = Path(tmp)
        config = write_config(directory, upstream, port, production)
        command = nginx_command(nginx, directory, config)
        # /healthz: proxied to the app without touching the database (or the counter).
        with started(
            command, f"http://127.0.0.1:{port}", "/healthz", os.environ, directory
        ) as server:
            yield RunningNginx(server.process, server.url, server.log_path, directory)
