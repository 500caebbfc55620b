"""deploy/k8s's web pod, run by Docker under the same constraints: the image really works so.

No cluster here. The Deployment's security context, volumes, environment and commands become
`docker run` flags (read-only root, its uid/gid, capabilities dropped, no-new-privileges, the
emptyDir as a tmpfs, the Secret as files of the fsGroup with its mode), on the host network
against a fresh database: the init container migrates it, the web container serves and stops.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from counter.config import Settings
from harness.poll import poll_until
from harness.provision import WEB_DIR, stored_count, throwaway_database
from harness.tools import free_port, require_tool
from http_client import fetch
from kustomization import KUSTOMIZATIONS, one, render

pytestmark = [pytest.mark.docker, pytest.mark.processes]

IMAGE = "counter-web:k8s-test"
# The stand-in for each Secret key: the app's password, or a production-length random key.
SECRET_VALUES = {"secret-key": "k8s-test-secret-key-" + os.urandom(16).hex()}


@pytest.fixture(scope="module")
def docker() -> str:
    """The docker CLI, once the runtime image of the working tree is built."""
    docker = require_tool("docker")
    if subprocess.run([docker, "info"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip("the Docker engine is not running (.ci/run says so when it cannot start it)")
    build = [docker, "build", "-q", "--target", "runtime", "-t", IMAGE, str(WEB_DIR)]
    subprocess.run(build, check=True, capture_output=True, timeout=900)
    return docker


@pytest.fixture
def database(server_settings: Settings) -> Iterator[Settings]:
    """An empty database (no migrations yet) for the pod."""
    with throwaway_database(server_settings) as settings:
        yield settings


def pod() -> dict[str, Any]:
    """The base's web pod spec."""
    spec: dict[str, Any] = one(render(KUSTOMIZATIONS["base"]), "Deployment")["spec"]["template"]
    return spec["spec"]


def docker_flags(container: dict[str, Any], db: Settings, port: int, tmp: Path) -> list[str]:
    """`docker run` flags for `container` of the pod, talking to `db`, serving on `port`."""
    spec = pod()
    context = {**spec["securityContext"], **container["securityContext"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}  # Docker's default profile
    flags = ["--network", "host", "--user", f"{context['runAsUser']}:{context['runAsGroup']}"]
    flags += ["--read-only"] if context["readOnlyRootFilesystem"] else []
    flags += [f"--cap-drop={name}" for name in context["capabilities"]["drop"]]
    flags += [] if context["allowPrivilegeEscalation"] else ["--security-opt", "no-new-privileges"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            flags += ["--tmpfs", mount["mountPath"]]
        else:
            folder = secret_files(volume["secret"], db, spec["securityContext"]["fsGroup"], tmp)
            flags += ["-v", f"{folder}:{mount['mountPath']}:ro"]
    config = one(render(KUSTOMIZATIONS["base"]), "ConfigMap", "counter-config")["data"]
    env = {
        **config,
        **{variable["name"]: variable["value"] for variable in container["env"]},
        "DB_HOST": db.db_host, "DB_PORT": str(db.db_port),
        "DB_USERNAME": db.db_username, "DATABASE_NAME": db.database_name,
        "WEB_BIND": f"127.0.0.1:{port}",
    }  # fmt: skip
    return flags + [f"--env={name}={value}" for name, value in env.items()]


def secret_files(secret: dict[str, Any], db: Settings, group: int, tmp: Path) -> Path:
    """The Secret volume as kubelet lays it out: one file per item, `defaultMode`, the fsGroup."""
    folder = tmp / secret["secretName"]
    folder.mkdir(exist_ok=True)
    for item in secret["items"]:
        path = folder / item["path"]
        path.write_text(SECRET_VALUES.get(item["key"], db.db_password))
        os.chown(path, -1, group)
        path.chmod(secret["defaultMode"])
    return folder


def test_the_pod_migrates_serves_and_stops_under_its_constraints(
    docker: str, database: Settings, tmp_path: Path
) -> None:
    spec, port = pod(), free_port()
    (migrate,) = spec["initContainers"]
    (web,) = spec["containers"]
    init = [docker, "run", "--rm", *docker_flags(migrate, database, port, tmp_path), IMAGE]
    done = subprocess.run([*init, *migrate["command"]], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert stored_count(database) == 0  # the migration made the counter's row

    name = f"counter-k8s-test-{os.getpid()}"
    # No command: the image's own start command, as the manifest leaves it.
    assert "command" not in web
    assert "args" not in web
    subprocess.run(
        [docker, "run", "-d", "--name", name, *docker_flags(web, database, port, tmp_path), IMAGE],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    try:
        probe = web["startupProbe"]
        within = probe["periodSeconds"] * probe["failureThreshold"]
        base = f"http://127.0.0.1:{port}"
        healthz = probe["httpGet"]["path"]
        poll_until(lambda: fetch(base, healthz).status == 200, within, healthz, errors=(OSError,))
        assert [fetch(base, "/").status for _ in range(2)] == [200, 200]
        assert stored_count(database) == 2
        # SIGTERM after preStop: Hypercorn is PID 1 here (no init), and must stop by itself.
        pause = web["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = spec["terminationGracePeriodSeconds"] - pause
        started = time.monotonic()
        subprocess.run([docker, "stop", "-t", str(grace), name], check=True, timeout=grace + 30)
        assert time.monotonic() - started < grace
        state = subprocess.run(
            [docker, "inspect", "-f", "{{.State.ExitCode}}", name],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        assert state == "0", subprocess.run([docker, "logs", name], capture_output=True).stderr
    finally:
        subprocess.run([docker, "rm", "-f", name], capture_output=True, timeout=60)
