"""deploy/k8s's web pod run by Docker as the manifests describe it, on the host network against a
fresh database: the init container migrates it, the web container serves and stops in time."""

import os
import runpy
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from counter.config import Settings
from harness.poll import poll_until
from harness.provision import WEB_DIR, stored_count, throwaway_database
from harness.tools import free_port, require_docker_engine
from http_client import fetch
from kustomization import KUSTOMIZATIONS, config, one, render

pytestmark = [pytest.mark.docker, pytest.mark.processes]

IMAGE = "counter-web:k8s-test"
# Each container's effective security context: no root, no writes but to its mounts, no more.
HARDENED: dict[str, object] = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001}
HARDENED |= {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
HARDENED |= {"capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
# The stand-in for each Secret key: the app's password, or a production-length random key.
SECRET_VALUES = {"secret-key": "k8s-test-secret-key-" + os.urandom(16).hex()}


@pytest.fixture(scope="module")
def docker() -> str:
    """The docker CLI, once the runtime image of the working tree is built."""
    docker = require_docker_engine()
    build = [docker, "build", "-q", "--target", "runtime", "-t", IMAGE, str(WEB_DIR)]
    subprocess.run(build, check=True, capture_output=True, timeout=900)
    return docker


def docker_flags(
    pod: dict[str, Any], container: dict[str, Any], env: dict[str, str], password: str, tmp: Path
) -> list[str]:
    """`docker run` flags for `container` of `pod`, with `env` and the Secret files in `tmp`."""
    # A container's own securityContext wins over the pod's, field by field.
    context = {**pod["securityContext"], **container["securityContext"]}
    assert {name: context.get(name) for name in HARDENED} == HARDENED, container["name"]
    flags = ["--network", "host", "--user", "10001:10001", "--read-only", "--cap-drop=ALL"]
    flags += ["--security-opt", "no-new-privileges"]  # and Docker's default seccomp profile
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for mount in container["volumeMounts"]:
        volume, target = volumes[mount["name"]], mount["mountPath"]
        if "emptyDir" in volume:
            flags += ["--tmpfs", target]
            continue
        # The Secret volume as kubelet lays it out: a file per item, `defaultMode`, the fsGroup.
        folder = tmp / volume["secret"]["secretName"]
        folder.mkdir(exist_ok=True)
        for item in volume["secret"]["items"]:
            path = folder / item["path"]
            path.write_text(SECRET_VALUES.get(item["key"], password))
            os.chown(path, -1, pod["securityContext"]["fsGroup"])
            path.chmod(volume["secret"]["defaultMode"])
        flags += ["-v", f"{folder}:{target}:ro"]
    env = {**env, **{variable["name"]: variable["value"] for variable in container["env"]}}
    return flags + [f"--env={name}={value}" for name, value in env.items()]


def test_the_pod_migrates_serves_and_stops_under_its_constraints(
    docker: str, server_settings: Settings, tmp_path: Path
) -> None:
    port, name = free_port(), f"counter-k8s-test-{os.getpid()}"
    base = render(KUSTOMIZATIONS["base"])
    pod = one(base, "Deployment")["spec"]["template"]["spec"]
    (migrate,) = pod["initContainers"]
    (web,) = pod["containers"]
    # The release's own migrations, once the preflight has waited for the database.
    assert migrate["image"] == web["image"]
    assert "counter.preflight" in " ".join(migrate["command"])
    # No command: the image's own start command, as the manifest leaves it.
    assert not {"command", "args"} & web.keys()
    # SIGTERM after preStop's drain: then Hypercorn's graceful timeout must fit in what is left.
    pause = web["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = pod["terminationGracePeriodSeconds"] - pause
    assert pause >= 5
    assert grace > runpy.run_path(str(WEB_DIR / "hypercorn_conf.py"))["graceful_timeout"]
    with throwaway_database(server_settings) as db:
        env = {**config(base), "DB_HOST": db.db_host, "DB_PORT": str(db.db_port)}
        env |= {"DB_USERNAME": db.db_username, "DATABASE_NAME": db.database_name}
        env["WEB_BIND"] = f"127.0.0.1:{port}"
        init = [docker, "run", "--rm", *docker_flags(pod, migrate, env, db.db_password, tmp_path)]
        init += [IMAGE, *migrate["command"]]
        done = subprocess.run(init, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert stored_count(db) == 0  # the migration made the counter's row
        run = [docker, "run", "-d", "--name", name]
        run += [*docker_flags(pod, web, env, db.db_password, tmp_path), IMAGE]
        subprocess.run(run, check=True, capture_output=True, timeout=60)
        try:
            probe = web["startupProbe"]
            limit = probe["periodSeconds"] * probe["failureThreshold"]
            url, healthz = f"http://127.0.0.1:{port}", probe["httpGet"]["path"]
            poll_until(lambda: fetch(url, healthz).status == 200, limit, healthz, errors=(OSError,))
            assert [fetch(url, "/").status for _ in range(2)] == [200, 200]
            assert stored_count(db) == 2
            # The root filesystem is read-only, yet a scratch file can go to /tmp (an emptyDir).
            subprocess.run([docker, "exec", name, "mktemp"], check=True, capture_output=True)
            # Hypercorn is PID 1 here (no init), and must stop by itself.
            started = time.monotonic()
            subprocess.run([docker, "stop", "-t", str(grace), name], check=True, timeout=grace + 30)
            assert time.monotonic() - started < grace
            status = subprocess.run([docker, "wait", name], capture_output=True, text=True)
            logs = subprocess.run([docker, "logs", name], capture_output=True, text=True).stderr
            assert status.stdout.strip() == "0", logs
        finally:
            subprocess.run([docker, "rm", "-f", name], capture_output=True, timeout=60)
