"""The built wheel maps skills/, sim/, hardware/ to robocell.* and ships the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_wheel_installs_and_imports_every_subpackage(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("robocell-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    # Without PYTHONPATH: a source tree on it (PYTHONPATH=<worktree> runs) carries robocell.egg-info
    # after the build, and pip would take robocell as installed already and skip the wheel.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True, timeout=300,
                   env=env)
    # Dependencies come from the test environment's site-packages by a plain path entry:
    # its .pth files (the editable robocell finder among them) are not processed that way,
    # so only the wheel's copy of robocell is importable.
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = (
        "import robocell, robocell.skills, robocell.sim, robocell.hardware, robocell.sim.backend, robocell.cli.main\n"
        "import pathlib; p = pathlib.Path(robocell.__file__)\n"
        "assert 'venv' in p.parts, p\n"
        "assert (p.parent / 'py.typed').exists() and (p.parent / 'skills' / 'py.typed').exists()\n"
        "import robocell.hardware.drivers.ur\n"
        "assert (p.parent / 'motion' / 'models' / 'ur5e.urdf').is_file()\n"
        "print(robocell.sim.__file__)\n"
    )
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert str(env_dir) in out.stdout
    helped = subprocess.run([str(env_dir / "bin" / "robocell"), "--help"], capture_output=True, text=True,
                            timeout=120, env=env, cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "Program robot cells" in helped.stdout
