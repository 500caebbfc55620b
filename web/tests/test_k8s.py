"""deploy/k8s: both kustomizations render, pass the pinned Kubernetes schemas, keep their promises.

Offline: no cluster. The manifests are rendered in Python (kustomization.py) and, where kubectl
is installed, compared with `kubectl kustomize`; then every object is checked against the
JSON schemas that kubernetes-validate ships, in strict mode (unknown fields fail).
"""

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

from counter.config import SECRET_VARIABLES, Settings
from harness.provision import WEB_DIR
from harness.servers import TEMPLATE
from kustomization import (
    K8S_DIR,
    KUSTOMIZATIONS,
    Resource,
    key,
    load_documents,
    one,
    pod_containers,
    render,
)

# One version, strict: a field newer than 1.35 fails, so the manifests apply on 1.35 and later.
KUBERNETES_VERSION = "1.35.0"
HARDENED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
POD_HARDENED = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001}

if not K8S_DIR.is_dir():
    # The test image holds web/ only; K8S_MANIFESTS points at a mounted copy.
    pytestmark = pytest.mark.skip(reason=f"{K8S_DIR} not found (set K8S_MANIFESTS)")


@pytest.fixture(scope="module", params=sorted(KUSTOMIZATIONS))
def rendered(request: pytest.FixtureRequest) -> list[Resource]:
    """Every object one kustomization produces."""
    return render(KUSTOMIZATIONS[request.param])


def web_pod(resources: list[Resource]) -> dict[str, Any]:
    """The web Deployment's pod spec."""
    spec: dict[str, Any] = one(resources, "Deployment")["spec"]["template"]["spec"]
    return spec


def web_container(resources: list[Resource]) -> dict[str, Any]:
    """The web Deployment's serving container."""
    (container,) = web_pod(resources)["containers"]
    return container


def referenced_files(directory: Path) -> set[Path]:
    """The kustomization, its resource and patch files, and those of what it includes."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    files = {directory / "kustomization.yaml"}
    patches = [patch["path"] for patch in kustomization.get("patches", [])]
    entries = kustomization.get("resources", []) + patches
    for entry in entries:
        path = (directory / entry).resolve()
        files |= referenced_files(path) if path.is_dir() else {path}
    return files


def test_every_file_is_part_of_a_kustomization() -> None:
    # So each one is schema-checked below, through a rendered result.
    referenced = set().union(*(referenced_files(d) for d in KUSTOMIZATIONS.values()))
    assert set(K8S_DIR.rglob("*.yaml")) == referenced


def test_valid_for_the_pinned_kubernetes_version(rendered: list[Resource]) -> None:
    for resource in rendered:
        # Raises ValidationError (bad or unknown field) or SchemaNotFoundError (unknown kind).
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_renders_like_kubectl_kustomize(name: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the Python rendering is not cross-checked")
    output = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZATIONS[name])],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    expected = {key(r): r for r in yaml.safe_load_all(output) if r}
    assert {key(r): r for r in render(KUSTOMIZATIONS[name])} == expected


def test_rolling_update_never_drops_capacity(rendered: list[Resource]) -> None:
    spec = one(rendered, "Deployment")["spec"]
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["strategy"]["rollingUpdate"]["maxSurge"] >= 1
    # The autoscaler owns the count; a `replicas:` would reset it on every apply.
    assert "replicas" not in spec


def test_probes_use_healthz_so_a_database_outage_keeps_every_pod_in_the_service(
    rendered: list[Resource],
) -> None:
    container = web_container(rendered)
    port_names = {port["name"] for port in container["ports"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz", probe
        assert container[probe]["httpGet"]["port"] in port_names, probe
    # Start-up may wait DB_STARTUP_TIMEOUT for the database before Hypercorn answers.
    startup = container["startupProbe"]
    config = one(rendered, "ConfigMap", "counter-config")["data"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget > float(config["DB_STARTUP_TIMEOUT"])


def test_prestop_and_grace_period_cover_draining(rendered: list[Resource]) -> None:
    pause = web_container(rendered)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause >= 5
    hypercorn = runpy.run_path(str(WEB_DIR / "hypercorn_conf.py"))
    grace = web_pod(rendered)["terminationGracePeriodSeconds"]
    assert grace > pause + hypercorn["graceful_timeout"]


def test_every_web_container_is_locked_down(rendered: list[Resource]) -> None:
    pod = web_pod(rendered)
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod_containers(one(rendered, "Deployment")):
        # A container's own securityContext wins over the pod's, field by field.
        effective = {**pod["securityContext"], **container["securityContext"]}
        expected = {**POD_HARDENED, **HARDENED}
        assert {name: effective.get(name) for name in expected} == expected, container["name"]
        assert effective["capabilities"] == {"drop": ["ALL"]}, container["name"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], container["name"]  # noqa: S108 (a mount)


def test_every_container_has_requests_and_limits(rendered: list[Resource]) -> None:
    for resource in rendered:
        for container in pod_containers(resource):
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), container["name"]
            assert "memory" in resources["limits"], container["name"]


def test_migrations_run_first_from_the_same_image(rendered: list[Resource]) -> None:
    (migrate,) = web_pod(rendered)["initContainers"]
    assert migrate["image"] == web_container(rendered)["image"]
    assert "alembic upgrade head" in " ".join(migrate["command"])
    assert "counter.preflight" in " ".join(migrate["command"])


def test_no_secret_value_in_any_manifest(rendered: list[Resource]) -> None:
    assert "Secret" not in {r["kind"] for r in rendered}
    config = one(rendered, "ConfigMap", "counter-config")["data"]
    assert not set(config) & set(SECRET_VARIABLES)
    for resource in rendered:
        for container in pod_containers(resource):
            for variable in container.get("env", []):
                if re.search("SECRET|PASSWORD", variable["name"]) and "value" in variable:
                    # Only the path of a file mounted from a Secret.
                    assert variable["name"].endswith("_FILE"), variable
                    assert secret_file(resource, container, variable["value"]), variable


def secret_file(workload: Resource, container: dict[str, Any], path: str) -> bool:
    """Whether `path` in `container` is one of the files a Secret volume mounts."""
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    for mount in container["volumeMounts"]:
        # A volumeClaimTemplate's mount has no entry in `volumes`.
        secret = volumes.get(mount["name"], {}).get("secret")
        if secret and path.startswith(mount["mountPath"] + "/"):
            file = path.removeprefix(mount["mountPath"] + "/")
            return file in {item["path"] for item in secret["items"]}
    return False


def test_config_and_secret_files_make_valid_production_settings(
    rendered: list[Resource], tmp_path: Path
) -> None:
    config = one(rendered, "ConfigMap", "counter-config")["data"]
    environ = dict(config)
    for variable in web_container(rendered)["env"]:
        # The mounted secret files, with stand-in contents at a local path.
        local = tmp_path / Path(variable["value"]).name
        local.write_text("a-long-enough-random-value-for-this-test\n")
        environ[variable["name"]] = str(local)
    settings = Settings.from_env(environ)
    assert settings.is_production
    # Every key is a variable the app reads: a misspelt one would be silently ignored.
    assert set(config) <= set(settings.to_env())


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


def test_ingress_body_limit_is_the_nginx_templates(rendered: list[Resource]) -> None:
    if not TEMPLATE.is_file():
        pytest.skip(f"{TEMPLATE} not found")
    (limit,) = re.findall(r"client_max_body_size (\S+);", TEMPLATE.read_text())
    annotations = one(rendered, "Ingress")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == limit


def test_mysql_runs_in_the_local_overlay_only() -> None:
    base = render(KUSTOMIZATIONS["base"])
    assert "StatefulSet" not in {r["kind"] for r in base}
    local = render(KUSTOMIZATIONS["local"])
    mysql = one(local, "StatefulSet", "mysql")
    assert mysql["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    db_host = one(local, "ConfigMap", "counter-config")["data"]["DB_HOST"]
    assert db_host == one(local, "Service", "mysql")["metadata"]["name"]


def test_load_documents_reads_every_file() -> None:
    # A file that parses to nothing would pass every test above unnoticed.
    for path in K8S_DIR.rglob("*.yaml"):
        assert load_documents(path), path
