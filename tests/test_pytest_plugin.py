"""The robocell pytest plugin and the assertions in words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from robocell.testing import (assert_gripper_empty, assert_holding, assert_in, assert_on_table, describe_world,
                              where_is)

from tests.conftest import ROOT, TABLETOP


def test_fixture_gives_a_fresh_seeded_cell(robocell_cell, robocell_backend: str) -> None:
    a = robocell_cell(TABLETOP, seed=4)
    b = robocell_cell(TABLETOP, seed=4)
    c = robocell_cell(TABLETOP, seed=5)
    assert robocell_backend == "sim"
    assert a is not b and a.object_pose("red_block").t == pytest.approx(b.object_pose("red_block").t)
    assert c.object_pose("red_block").t != pytest.approx(a.object_pose("red_block").t)


def test_assertions_describe_the_world_when_they_fail(robocell_cell) -> None:
    cell = robocell_cell(TABLETOP, seed=0)
    assert where_is(cell, "red_block").startswith("on the table at (0.4")
    assert_on_table(cell, "red_block")
    assert_gripper_empty(cell)
    with pytest.raises(AssertionError) as exc:
        assert_in(cell, "red_block", "bin")
    text = str(exc.value)
    assert text.startswith("expected red_block in bin, but red_block is on the table at (")
    assert "m from bin" in text
    assert "world: red_block on the table" in text and "panda's gripper holds nothing (open" in text
    with pytest.raises(AssertionError, match="expected panda holding red_block, but panda's gripper holds nothing"):
        assert_holding(cell, "red_block")
    assert "blue_block on the table" in describe_world(cell)


EXAMPLE = '''
import pytest
from robocell.testing import assert_in

CELL = {cell!r}

def test_block_in_bin(robocell_cell):
    assert_in(robocell_cell(CELL), "red_block", "bin")   # fails: nothing moved it

@pytest.mark.hardware
def test_on_the_arm(robocell_backend):
    assert robocell_backend.startswith("tcp://")
'''


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    test = tmp_path / "test_user_suite.py"
    test.write_text(EXAMPLE.format(cell=str(TABLETOP)))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test), *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_plugin_is_installed_skips_hardware_and_pictures_failures(tmp_path: Path) -> None:
    out = _pytest(tmp_path, "--robocell-pictures", str(tmp_path / "pics"), "-rs")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 failed, 1 skipped" in out.stdout
    assert "needs a real arm: pass --robocell-backend tcp://host:port" in out.stdout
    assert "expected red_block in bin, but red_block is on the table" in out.stdout
    pics = list((tmp_path / "pics").glob("*.png"))
    assert len(pics) == 1 and "test_block_in_bin" in pics[0].name
    # the old option name keeps working; with an address the hardware test runs
    out = _pytest(tmp_path, "--hardware-backend", "tcp://arm:5555", "-k", "on_the_arm")
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout + out.stderr


def test_example_suite_is_collected_by_make_test() -> None:
    import tomllib

    paths = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"]
    assert "examples/tests" in paths and (ROOT / "examples" / "tests" / "test_tabletop_cell.py").is_file()
