"""deploy/k8s, offline: both kustomizations render (like `kubectl kustomize` where installed), pass
kubernetes-validate's pinned schemas in strict mode, and keep their promises."""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from counter.config import Settings
from counter.envvars import SECRET_VARIABLES
from harness.provision import WEB_DIR
from harness.servers import TEMPLATE
from kustomization import (
    K8S_DIR,
    KUSTOMIZATIONS,
    Resource,
    config,
    key,
    one,
    pod_containers,
    render,
    web_container,
    web_pod,
)

# Strict: a field newer than 1.35 fails, so the manifests apply on 1.35 and later.
KUBERNETES_VERSION = "1.35.0"
HARDENED: dict[str, object] = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
HARDENED |= {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001}

if not K8S_DIR.is_dir():  # the test image holds web/ only; K8S_MANIFESTS points at a copy
    pytestmark = pytest.mark.skip(reason=f"{K8S_DIR} not found (set K8S_MANIFESTS)")


@pytest.fixture(scope="module", params=sorted(KUSTOMIZATIONS))
def rendered(request: pytest.FixtureRequest) -> list[Resource]:
    """Every object one kustomization produces."""
    return render(KUSTOMIZATIONS[request.param])


def referenced_files(directory: Path) -> set[Path]:
    """The kustomization, its resource and patch files, and those of what it includes."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    patches = [patch["path"] for patch in kustomization.get("patches", [])]
    entries = kustomization.get("resources", []) + patches
    files = {directory / "kustomization.yaml"}
    for path in ((directory / entry).resolve() for entry in entries):
        files |= referenced_files(path) if path.is_dir() else {path}
    return files


def test_every_file_is_part_of_a_kustomization_and_not_empty() -> None:
    # So each one is schema-checked below, through a rendered result.
    referenced = set().union(*(referenced_files(d) for d in KUSTOMIZATIONS.values()))
    assert set(K8S_DIR.rglob("*.yaml")) == referenced
    assert all(any(yaml.safe_load_all(path.read_text())) for path in referenced)


def test_valid_for_the_pinned_kubernetes_version(rendered: list[Resource]) -> None:
    for resource in rendered:  # raises on a bad or unknown field, or an unknown kind
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_renders_like_kubectl_kustomize(name: str) -> None:
    if (kubectl := shutil.which("kubectl")) is None:
        pytest.skip("kubectl is not installed: the Python rendering is not cross-checked")
    command = [kubectl, "kustomize", str(KUSTOMIZATIONS[name])]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    expected = {key(r): r for r in yaml.safe_load_all(output.stdout) if r}
    assert {key(r): r for r in render(KUSTOMIZATIONS[name])} == expected


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    text = (KUSTOMIZATIONS["local"] / "kustomization.yaml").read_text()
    (tmp_path / "kustomization.yaml").write_text(text + "namePrefix: x-\n")
    with pytest.raises(ValueError, match="namePrefix"):
        render(tmp_path)


def test_rolling_update_never_drops_capacity(rendered: list[Resource]) -> None:
    spec = one(rendered, "Deployment")["spec"]
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["strategy"]["rollingUpdate"]["maxSurge"] >= 1
    assert "replicas" not in spec  # the autoscaler owns the count; apply would reset it


def test_probes_use_healthz_so_a_database_outage_keeps_every_pod_in_the_service(
    rendered: list[Resource],
) -> None:
    container = web_container(rendered)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz", probe
        assert container[probe]["httpGet"]["port"] in {p["name"] for p in container["ports"]}
    # Start-up may wait DB_STARTUP_TIMEOUT for the database before Hypercorn answers.
    startup = container["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget > float(config(rendered)["DB_STARTUP_TIMEOUT"])


def test_prestop_and_grace_period_cover_draining(rendered: list[Resource]) -> None:
    pause = web_container(rendered)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause >= 5
    graceful = runpy.run_path(str(WEB_DIR / "hypercorn_conf.py"))["graceful_timeout"]
    assert web_pod(rendered)["terminationGracePeriodSeconds"] > pause + graceful


def test_every_web_container_is_locked_down(rendered: list[Resource]) -> None:
    pod = web_pod(rendered)
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod_containers(one(rendered, "Deployment")):
        # A container's own securityContext wins over the pod's, field by field.
        effective = {**pod["securityContext"], **container["securityContext"]}
        assert {name: effective.get(name) for name in HARDENED} == HARDENED, container["name"]
        assert effective["capabilities"] == {"drop": ["ALL"]}, container["name"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], container["name"]  # noqa: S108 (a mount)


def test_every_container_has_requests_and_limits(rendered: list[Resource]) -> None:
    for container in (c for r in rendered for c in pod_containers(r)):
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), container["name"]
        assert "memory" in container["resources"]["limits"], container["name"]


def test_migrations_run_first_from_the_same_image(rendered: list[Resource]) -> None:
    (migrate,) = web_pod(rendered)["initContainers"]
    assert migrate["image"] == web_container(rendered)["image"]
    assert "alembic upgrade head" in " ".join(migrate["command"])
    assert "counter.preflight" in " ".join(migrate["command"])


def test_no_secret_value_in_any_manifest(rendered: list[Resource]) -> None:
    assert "Secret" not in {r["kind"] for r in rendered}
    assert not set(config(rendered)) & set(SECRET_VARIABLES)
    for resource in rendered:
        for container in pod_containers(resource):
            for variable in container.get("env", []):
                if re.search("SECRET|PASSWORD", variable["name"]) and "value" in variable:
                    # Only the path of a file mounted from a Secret.
                    assert variable["name"].endswith("_FILE"), variable
                    assert variable["value"] in secret_files(resource, container), variable


def secret_files(workload: Resource, container: dict[str, Any]) -> set[str]:
    """The paths of the files Secret volumes mount in `container`."""
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    return {
        f"{mount['mountPath']}/{item['path']}"
        for mount in container["volumeMounts"]
        # A volumeClaimTemplate's mount has no entry in `volumes`.
        for item in volumes.get(mount["name"], {}).get("secret", {}).get("items", [])
    }


def test_config_and_secret_files_make_valid_production_settings(
    rendered: list[Resource], tmp_path: Path
) -> None:
    environ = dict(config(rendered))
    for variable in web_container(rendered)["env"]:
        # The mounted secret files, with stand-in contents at a local path.
        local = tmp_path / Path(variable["value"]).name
        local.write_text("a-long-enough-random-value-for-this-test\n")
        environ[variable["name"]] = str(local)
    settings = Settings.from_env(environ)
    assert settings.is_production
    # Every key is a variable the app reads: a misspelt one would be silently ignored.
    assert set(config(rendered)) <= set(settings.to_env())


def test_service_ingress_autoscaler_and_budget_point_at_the_web_pods(
    rendered: list[Resource],
) -> None:
    labels = one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = one(rendered, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == web_container(rendered)["ports"][0]["name"]
    assert one(rendered, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == labels
    target = one(rendered, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "counter-web")
    ingress = one(rendered, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "counter-web", "port": {"name": "http"}}
    hosts = {host for tls in ingress["spec"]["tls"] for host in tls["hosts"]}
    assert {rule["host"] for rule in ingress["spec"]["rules"]} <= hosts
    # The body limit is the nginx template's.
    if not TEMPLATE.is_file():
        pytest.skip(f"{TEMPLATE} not found")
    (limit,) = re.findall(r"client_max_body_size (\S+);", TEMPLATE.read_text())
    annotation = "nginx.ingress.kubernetes.io/proxy-body-size"
    assert ingress["metadata"]["annotations"][annotation] == limit


def test_mysql_runs_in_the_local_overlay_only() -> None:
    assert "StatefulSet" not in {r["kind"] for r in render(KUSTOMIZATIONS["base"])}
    local = render(KUSTOMIZATIONS["local"])
    mysql = one(local, "StatefulSet", "mysql")
    assert mysql["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert config(local)["DB_HOST"] == one(local, "Service", "mysql")["metadata"]["name"]
