"""deploy/k8s, offline: both kustomizations render (as `kubectl kustomize` does), pass the pinned
schemas in strict mode, and keep the promises that running the pod (test_k8s_pod) cannot show."""

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from counter.config import Settings
from counter.envvars import SECRET_VARIABLES
from harness.servers import TEMPLATE
from kustomization import K8S_DIR, KUSTOMIZATIONS, Resource, config, containers_of, key, one, render

# Strict: a field newer than 1.35 fails, so the manifests apply on 1.35 and later.
KUBERNETES_VERSION = "1.35.0"

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


def test_probes_use_healthz_so_a_database_outage_keeps_every_pod_in_the_service(
    rendered: list[Resource],
) -> None:
    (container,) = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz", probe
        assert container[probe]["httpGet"]["port"] in {p["name"] for p in container["ports"]}
    # Start-up may wait DB_STARTUP_TIMEOUT for the database before Hypercorn answers.
    startup = container["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget > float(config(rendered)["DB_STARTUP_TIMEOUT"])


def test_every_container_has_requests_and_limits(rendered: list[Resource]) -> None:
    for container in (c for r in rendered for c in containers_of(r)):
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), container["name"]
        assert "memory" in container["resources"]["limits"], container["name"]


def test_no_secret_value_in_any_manifest_and_no_api_token_in_a_pod(
    rendered: list[Resource],
) -> None:
    assert "Secret" not in {r["kind"] for r in rendered}
    assert not set(config(rendered)) & set(SECRET_VARIABLES)
    for resource in (r for r in rendered if containers_of(r)):
        pod = resource["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        # A secret's variable holds only the path of a file that a Secret volume mounts.
        secrets = {v["name"]: v.get("secret", {}) for v in pod["volumes"]}
        for container in containers_of(resource):
            files = {
                f"{mount['mountPath']}/{item['path']}"
                for mount in container["volumeMounts"]
                # A volumeClaimTemplate's mount has no entry in `secrets`.
                for item in secrets.get(mount["name"], {}).get("items", [])
            }
            for variable in container.get("env", []):
                if re.search("SECRET|PASSWORD", variable["name"]) and "value" in variable:
                    assert variable["name"].endswith("_FILE"), variable
                    assert variable["value"] in files, variable


def test_the_config_makes_production_settings_of_variables_the_app_reads(
    rendered: list[Resource],
) -> None:
    # Stand-ins for the Secret's files, which test_k8s_pod mounts and the app reads.
    settings = Settings.from_env({**config(rendered), "SECRET_KEY": "x" * 40, "DB_PASSWORD": "x"})
    assert settings.is_production
    # A misspelt key would be silently ignored.
    assert set(config(rendered)) <= set(settings.to_env())


def test_rollout_service_ingress_autoscaler_and_budget_fit_the_web_pods(
    rendered: list[Resource],
) -> None:
    deployment = one(rendered, "Deployment")["spec"]
    # An old pod stops only once a new one is ready (the API server then refuses a maxSurge of 0).
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "replicas" not in deployment  # the autoscaler owns the count; apply would reset it
    labels = deployment["template"]["metadata"]["labels"]
    (web,) = deployment["template"]["spec"]["containers"]
    service = one(rendered, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == web["ports"][0]["name"]
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


def test_the_local_overlay_points_the_app_at_its_own_mysql() -> None:
    local = render(KUSTOMIZATIONS["local"])
    assert config(local)["DB_HOST"] == one(local, "Service", "mysql")["metadata"]["name"]
    assert one(local, "StatefulSet", "mysql")
