"""deploy/k8s's kustomizations rendered in Python, for machines without kubectl: `resources`,
`images` and `patches` by file; maps merge, lists are replaced (test_k8s compares with kubectl)."""

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from counter.config import REPO_DIR

# K8S_MANIFESTS: where a copy is mounted when the tests run without the repository around web/.
K8S_DIR = Path(os.environ.get("K8S_MANIFESTS") or REPO_DIR / "deploy" / "k8s")
KUSTOMIZATIONS = {"base": K8S_DIR / "base", "local": K8S_DIR / "overlays" / "local"}
Resource = dict[str, Any]


def load_documents(path: Path) -> list[Resource]:
    """Every non-empty YAML document in `path`."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def key(resource: Resource) -> tuple[str, str]:
    """(kind, name): how kustomize finds a patch's target (no namespaces here)."""
    return resource["kind"], resource["metadata"]["name"]


def one(resources: list[Resource], kind: str, name: str = "counter-web") -> Resource:
    """The object of `kind` named `name`."""
    (found,) = [r for r in resources if key(r) == (kind, name)]
    return found


def containers_of(resource: Resource) -> list[Resource]:
    """The init containers and containers of a workload's pod (none for other kinds)."""
    pod = resource.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def config(resources: list[Resource]) -> dict[str, str]:
    """The app's ConfigMap."""
    data: dict[str, str] = one(resources, "ConfigMap", "counter-config")["data"]
    return data


def merge(target: Resource, patch: Resource) -> None:
    """Apply `patch` to `target` in place: maps merge, null deletes, anything else replaces."""
    for name, value in patch.items():
        if value is None:
            target.pop(name, None)
        elif isinstance(value, dict) and isinstance(target.get(name), dict):
            merge(target[name], value)
        else:
            target[name] = copy.deepcopy(value)


def render(directory: Path) -> list[Resource]:
    """The resources `kubectl kustomize directory` would print (in file order, not kind order)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - {"apiVersion", "kind", "resources", "images", "patches"}
    unsupported |= {f"patch {p}" for p in kustomization.get("patches", []) if set(p) != {"path"}}
    if unsupported:
        raise ValueError(f"{directory}: not implemented here: {sorted(unsupported)}")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        resources += render(path) if path.is_dir() else load_documents(path)
    by_key = {key(resource): resource for resource in resources}
    for entry in kustomization.get("patches", []):
        for patch in load_documents(directory / entry["path"]):
            merge(by_key[key(patch)], patch)
    for image in kustomization.get("images", []):
        for container in (c for r in resources for c in containers_of(r)):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                tag, name = image.get("newTag", tag), image.get("newName", name)
                container["image"] = f"{name}:{tag}" if tag else name
    return resources
