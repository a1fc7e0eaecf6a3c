"""mypy on the four packages (robocell, robocell.skills, robocell.sim, robocell.hardware): zero errors.

The configuration is pyproject.toml's ``[tool.mypy]`` (strict for the contracts and
robocell.testing). pyproject maps robocell.skills, .sim and .hardware to the top-level
folders skills/, sim/ and hardware/; the editable install finds them through an import
hook, which mypy does not run. So the packages are assembled as one ``robocell/`` tree of
symlinks under .mypy_cache/ (rebuilt every run, so moved or new modules are seen) and
mypy checks that, with its incremental cache next to it: a run after a small change
takes seconds, a cold one a minute or two.

Run alone, with mypy's report: ``.venv/bin/python tests/test_typing.py``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".mypy_cache"
TREE = CACHE / "tree"  # TREE/robocell is what mypy sees as the robocell package
MYPY_TIMEOUT = 900.0  # s: a cold run on a loaded 2-core host; warm runs take seconds


def build_tree() -> Path:
    """Symlink robocell/'s entries and every folder pyproject maps to a robocell.<name> package."""
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    links = {p.name: p for p in (ROOT / package_dir["robocell"]).iterdir() if p.name != "__pycache__"}
    for name, folder in package_dir.items():
        parts = name.split(".")
        if len(parts) == 2 and parts[0] == "robocell":  # deeper ones lie inside these folders
            links[parts[1]] = ROOT / folder
    pkg = TREE / "robocell"
    if pkg.exists():
        shutil.rmtree(pkg)  # only symlinks: nothing they point to is touched
    pkg.mkdir(parents=True)
    (CACHE / ".gitignore").write_text("*\n")  # as mypy writes it, in case the tree comes first
    for name, target in links.items():
        (pkg / name).symlink_to(target, target_is_directory=target.is_dir())
    return TREE


def run_mypy() -> subprocess.CompletedProcess[str]:
    tree = build_tree()
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
           "--cache-dir", str(CACHE), "--no-color-output", "--no-error-summary"]
    # in the tree, not the repository: there ./robocell would shadow the assembled package
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    return subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=MYPY_TIMEOUT)


@pytest.mark.timeout(MYPY_TIMEOUT + 60)
def test_mypy_finds_no_errors() -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed in this environment (it comes with the dev lock: make venv)")
    result = run_mypy()
    report = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"mypy found errors (run: .venv/bin/python tests/test_typing.py):\n{report}"


if __name__ == "__main__":
    done = run_mypy()
    print((done.stdout + done.stderr).strip() or "mypy: no errors")
    sys.exit(done.returncode)
