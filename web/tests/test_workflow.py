"""The user's CI (.github/): actionlint passes the workflow and rejects broken copies of it; the
workflow runs what the README promises; Dependabot watches every pinned thing; `make lint` finds
every shell script. Validated here, run only on GitHub."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from harness.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
ACTIONLINT_CONFIG = ROOT / ".github" / "actionlint.yaml"
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
# Each ecosystem, and a file Dependabot must find in its directory.
MANIFESTS = {
    "pip": "requirements.in",
    "docker": "Dockerfile",
    "docker-compose": "docker-compose.yml",
    "github-actions": ".github/workflows/ci.yml",
}
SHELLS = {"sh", "bash", "dash"}


@pytest.fixture(scope="module", autouse=True)
def repository() -> None:
    """Skip where only web/ is present (the test image's build context); fail so under CI=true."""
    if not WORKFLOW.exists() or not (ROOT / ".git").exists():
        message = f"no git checkout with {WORKFLOW.relative_to(ROOT)} here"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI=true requires it")
        pytest.skip(message)


def tool(name: str) -> str:
    """`name` from this venv's bin (the dev lock ships it), else from PATH."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else require_tool(name)


def actionlint(workflow: Path) -> subprocess.CompletedProcess[str]:
    """actionlint with the project's config, checking `run:` scripts with shellcheck."""
    command = [tool("actionlint"), "-config-file", str(ACTIONLINT_CONFIG), "-oneline"]
    command += ["-shellcheck", tool("shellcheck"), "-pyflakes=", str(workflow)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)


def load(path: Path) -> Any:
    """A YAML file as plain data."""
    return yaml.safe_load(path.read_text())


def test_actionlint_passes_the_workflow() -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        ("permissions:\n  contents: read\n", "", "require-permissions"),
        ("    timeout-minutes: 30\n", "", "require-job-timeout"),
        ("run: make local-test", "run: cd $WORK_DIR && make local-test", "shellcheck"),
        ("${{ job.services.mysql.id }}", "${{ job.services.mysql.id.nope( }}", "expression"),
        ("runs-on: ubuntu-latest", "runs-on: [ubuntu-latest", "syntax-check"),
    ],
)
def test_actionlint_rejects_a_broken_copy(tmp_path: Path, old: str, new: str, rule: str) -> None:
    text = WORKFLOW.read_text()
    assert old in text
    broken = tmp_path / "ci.yml"
    broken.write_text(text.replace(old, new, 1))
    result = actionlint(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"[{rule}]" in result.stdout


def run_commands(job: dict[str, Any]) -> list[str]:
    """The `run:` lines of a job's steps."""
    return [line.strip() for step in job["steps"] for line in step.get("run", "").splitlines()]


def test_host_job_lints_and_tests_against_mysql_8_4_with_quartenvs_values() -> None:
    workflow = load(WORKFLOW)
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    host = workflow["jobs"]["host"]
    service = host["services"]["mysql"]
    assert service["image"] == "mysql:8.4"
    # The service cannot read .quartenv (it starts before the checkout): its copy must match.
    quartenv = dotenv_values(ROOT / ".quartenv")
    assert service["env"] == {name: quartenv[name] for name in service["env"]}
    assert set(service["env"]) >= {"MYSQL_ROOT_PASSWORD", "MYSQL_USER", "MYSQL_PASSWORD"}
    assert f"{quartenv['DB_PORT']}:3306" in service["ports"]
    assert "--health-cmd" in service["options"]
    assert "mysqladmin ping" in service["options"]
    commands = run_commands(host)
    assert commands.index("make lint") < commands.index("make local-test")


def test_docker_job_runs_the_users_path_and_always_stops_the_stack() -> None:
    docker = load(WORKFLOW)["jobs"]["docker"]
    commands = run_commands(docker)
    page = next(c for c in commands if "curl" in c)
    assert commands.index("make up") < commands.index(page) < commands.index("make test")
    down = next(step for step in docker["steps"] if step.get("run") == "make down")
    assert down["if"] == "always()"


def test_dependabot_watches_every_pinned_ecosystem_weekly() -> None:
    updates = load(DEPENDABOT)["updates"]
    assert {update["package-ecosystem"] for update in updates} == set(MANIFESTS)
    for update in updates:
        directory = ROOT / update["directory"].lstrip("/")
        assert (directory / MANIFESTS[update["package-ecosystem"]]).is_file(), update
        assert update["schedule"]["interval"] == "weekly"


def shell_of(path: Path) -> str | None:
    """The interpreter a file's shebang names (through env), or None."""
    first = path.read_text(errors="replace").split("\n", 1)[0]
    if not first.startswith("#!"):
        return None
    words = first[2:].split()
    return Path(words[1] if Path(words[0]).name == "env" else words[0]).name


def test_make_lint_shellchecks_every_shell_script() -> None:
    listing = ["make", "-s", "--eval", "shell-scripts: ; @echo $(SHELL_SCRIPTS)", "shell-scripts"]
    listed = subprocess.run(listing, capture_output=True, text=True, cwd=ROOT, check=True)
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT)
    scripts = {
        name
        for name in tracked.stdout.split()
        if (ROOT / name).is_file() and (name.endswith(".sh") or shell_of(ROOT / name) in SHELLS)
    }
    assert ".ci/run" in scripts
    assert set(listed.stdout.split()) == scripts
