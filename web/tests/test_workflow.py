"""The user's CI (.github/), validated here and run only on GitHub: actionlint passes the workflow
and rejects broken copies of it; it runs what the README promises; Dependabot watches every pinned
thing; `make lint` finds every shell script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from counter.config import REPO_DIR
from harness.tools import require_tool, skip_unless_ci

WORKFLOW = REPO_DIR / ".github" / "workflows" / "ci.yml"
# Each ecosystem, and a file Dependabot must find in its directory.
MANIFESTS = {"pip": "requirements.in", "docker": "Dockerfile"}
MANIFESTS |= {"docker-compose": "docker-compose.yml", "github-actions": ".github/workflows/ci.yml"}


@pytest.fixture(scope="module", autouse=True)
def repository() -> None:
    """Skip where only web/ is present (the test image's build context); fail so under CI=true."""
    if not WORKFLOW.exists() or not (REPO_DIR / ".git").exists():
        skip_unless_ci(f"no git checkout with {WORKFLOW.relative_to(REPO_DIR)} here")


def actionlint(workflow: Path) -> subprocess.CompletedProcess[str]:
    """actionlint with the project's config, checking `run:` scripts with shellcheck (both from
    this venv's bin, where the dev lock puts them, else from PATH)."""
    tool = {n: Path(sys.executable).parent / n for n in ("actionlint", "shellcheck")}
    path = {n: str(p) if p.exists() else require_tool(n) for n, p in tool.items()}
    command = [path["actionlint"], "-config-file", str(REPO_DIR / ".github" / "actionlint.yaml")]
    command += ["-oneline", "-shellcheck", path["shellcheck"], "-pyflakes=", str(workflow)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO_DIR)


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
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    host = workflow["jobs"]["host"]
    service = host["services"]["mysql"]
    assert service["image"] == "mysql:8.4"
    # The service cannot read .quartenv (it starts before the checkout): its copy must match.
    quartenv = dotenv_values(REPO_DIR / ".quartenv")
    assert service["env"] == {name: quartenv[name] for name in service["env"]}
    assert set(service["env"]) >= {"MYSQL_ROOT_PASSWORD", "MYSQL_USER", "MYSQL_PASSWORD"}
    assert f"{quartenv['DB_PORT']}:3306" in service["ports"]
    assert "--health-cmd" in service["options"]
    assert "mysqladmin ping" in service["options"]
    commands = run_commands(host)
    assert commands.index("make lint") < commands.index("make local-test")


def test_docker_job_runs_the_users_path_and_always_stops_the_stack() -> None:
    docker = yaml.safe_load(WORKFLOW.read_text())["jobs"]["docker"]
    commands = run_commands(docker)
    page = next(c for c in commands if "curl" in c)
    assert commands.index("make up") < commands.index(page) < commands.index("make test")
    down = next(step for step in docker["steps"] if step.get("run") == "make down")
    assert down["if"] == "always()"


def test_dependabot_watches_every_pinned_ecosystem_weekly() -> None:
    updates = yaml.safe_load((REPO_DIR / ".github" / "dependabot.yml").read_text())["updates"]
    assert {update["package-ecosystem"] for update in updates} == set(MANIFESTS)
    for update in updates:
        directory = REPO_DIR / update["directory"].lstrip("/")
        assert (directory / MANIFESTS[update["package-ecosystem"]]).is_file(), update
        assert update["schedule"]["interval"] == "weekly"


def test_make_lint_shellchecks_every_shell_script() -> None:
    listing = ["make", "-s", "--eval", "shell-scripts: ; @echo $(SHELL_SCRIPTS)", "shell-scripts"]
    listed = subprocess.run(listing, capture_output=True, text=True, cwd=REPO_DIR, check=True)
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=REPO_DIR)
    scripts = {name for name in tracked.stdout.split() if is_shell_script(REPO_DIR / name)}
    assert ".ci/run" in scripts
    assert set(listed.stdout.split()) == scripts


def is_shell_script(path: Path) -> bool:
    """A *.sh file, or one whose shebang names sh, bash or dash (through env or not)."""
    if not path.is_file():
        return False
    first = path.read_text(errors="replace").split("\n", 1)[0]
    words = (first.removeprefix("#!").split() if first.startswith("#!") else []) or [""]
    shell = words[1] if Path(words[0]).name == "env" else words[0]
    return path.suffix == ".sh" or Path(shell).name in {"sh", "bash", "dash"}
