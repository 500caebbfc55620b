"""The user's CI (.github/), validated here and run only on GitHub: actionlint (with the project's
policy rules) passes the workflow; the MySQL service mirrors .quartenv; Dependabot watches every
pinned thing; `make lint` finds every shell script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_actionlint_passes_the_workflow_and_applies_our_policy_rules(tmp_path: Path) -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    # Rules off by default in actionlint: without the permissions and a job's timeout, they fire.
    text = WORKFLOW.read_text().replace("permissions:\n  contents: read\n", "")
    broken = tmp_path / "ci.yml"
    broken.write_text(text.replace("    timeout-minutes: 30\n", "", 1))
    result = actionlint(broken)
    assert "[require-permissions]" in result.stdout
    assert "[require-job-timeout]" in result.stdout


def test_the_mysql_service_has_quartenvs_values_and_the_token_only_reads() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["permissions"] == {"contents": "read"}
    service = workflow["jobs"]["host"]["services"]["mysql"]
    # The service cannot read .quartenv (it starts before the checkout): its copy must match.
    quartenv = dotenv_values(REPO_DIR / ".quartenv")
    assert service["env"] == {name: quartenv[name] for name in service["env"]}
    assert set(service["env"]) >= {"MYSQL_ROOT_PASSWORD", "MYSQL_USER", "MYSQL_PASSWORD"}
    assert f"{quartenv['DB_PORT']}:3306" in service["ports"]


def test_dependabot_watches_every_pinned_ecosystem_where_its_files_are() -> None:
    updates = yaml.safe_load((REPO_DIR / ".github" / "dependabot.yml").read_text())["updates"]
    assert {update["package-ecosystem"] for update in updates} == set(MANIFESTS)
    for update in updates:
        directory = REPO_DIR / update["directory"].lstrip("/")
        assert (directory / MANIFESTS[update["package-ecosystem"]]).is_file(), update


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
