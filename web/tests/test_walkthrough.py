"""README's "Adding a table, end to end" followed to the letter on a copy of the tree: its blocks
applied, its commands run (autogenerate included), then lint, mypy and the migration tests."""

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from counter.config import REPO_DIR, Settings
from harness.provision import WEB_DIR, throwaway_database
from harness.tools import require_tool, skip_unless_ci

pytestmark = pytest.mark.processes

SECTION = "## Adding a table, end to end"
# `<!-- walkthrough: <file> imports|append|create -->` or `<!-- walkthrough: run -->`, then a
# fenced block indented as its list item is.
BLOCK = re.compile(
    r"<!-- walkthrough: (?P<how>[^>]+?) -->\n(?P<indent> *)```\w*\n(?P<code>.*?)\n(?P=indent)```",
    re.DOTALL,
)
# mypy's cache is copied (it revalidates files by size, mtime and hash): cold, mypy takes ~40 s.
LEFT_OUT = shutil.ignore_patterns(".venv", ".pytest_cache", ".ruff_cache", "__pycache__")


def walkthrough() -> list[tuple[str, str]]:
    """The section's marked blocks in order, as (how, code) with the list indent removed."""
    text = (REPO_DIR / "README.md").read_text()
    section = text[text.index(SECTION) :].split("\n## ", 1)[0]
    return [
        (match["how"], re.sub(f"(?m)^{match['indent']}", "", match["code"]))
        for match in BLOCK.finditer(section)
    ]


def set_import(module: Path, line: str) -> None:
    """`line` replaces the module's import from the same place."""
    new = ast.parse(line).body[0]
    assert isinstance(new, ast.ImportFrom), f"not a `from x import y` line: {line}"
    tops = ast.parse(module.read_text()).body
    [old] = [n for n in tops if isinstance(n, ast.ImportFrom) and n.module == new.module]
    source = module.read_text().split("\n")
    source[old.lineno - 1 : old.end_lineno] = [line]
    module.write_text("\n".join(source))


def succeed(cwd: Path, env: dict[str, str], command: str) -> None:
    """Run the shell `command` in `cwd`; it must succeed."""
    done = subprocess.run(
        ["sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"


def edit(copy: Path, how: str, code: str) -> None:
    """Make the edit one block asks for, as a newcomer would."""
    path, action = how.rsplit(" ", 1)
    target = copy / path
    if action == "create":
        assert not target.exists(), f"{path} exists already"
        target.write_text(code + "\n")
    elif action == "append":
        target.write_text(target.read_text().rstrip("\n") + "\n\n\n" + code + "\n")
    else:
        assert action == "imports", f"unknown walkthrough step {how!r}"
        set_import(target, code)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """web/ and the Makefile copied, the venv linked; skipped where only web/ exists (the test
    image), failed so under CI=true."""
    if not (REPO_DIR / "README.md").exists() or not (WEB_DIR / ".venv").is_dir():
        skip_unless_ci("README.md and web/.venv are not here (only web/ is, as in the test image)")
    require_tool("make")
    shutil.copytree(WEB_DIR, tmp_path / "web", ignore=LEFT_OUT)
    shutil.copy2(REPO_DIR / "Makefile", tmp_path)
    (tmp_path / "web" / ".venv").symlink_to(WEB_DIR / ".venv")
    return tmp_path


def test_walkthrough_passes_as_written(copy: Path, server_settings: Settings) -> None:
    versions = copy / "web" / "migrations" / "versions"
    before = set(versions.glob("*.py"))
    with throwaway_database(server_settings) as settings:
        env = {**os.environ, **settings.to_env()}
        for how, code in walkthrough():
            if how == "run":
                succeed(copy, env, code)
            else:
                edit(copy, how, code)
        [revision] = set(versions.glob("*.py")) - before  # none: the section ran no command
        assert "op.create_table(" in revision.read_text(), revision.read_text()
        # Then, as the section ends: `make lint`'s Python checks, and the migration tests.
        lint = ".venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy"
        succeed(copy / "web", env, f"{lint} && .venv/bin/pytest -q tests/test_migrations.py")
