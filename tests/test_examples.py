"""Every example in examples/ runs, as a user would run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from robocell.cli import main

from tests.conftest import KUKA, ROOT, TABLETOP

EXAMPLES = ROOT / "examples"
# Starts its own server; README.md's remote quick start runs it as a program (tests/test_docs_commands.py),
# and its exit code says whether red_block ended in the bin.
STANDALONE = {"remote_pick_place.py"}
RUNNABLE = sorted(EXAMPLES.glob("programs/*.yaml")) + sorted(
    p for p in EXAMPLES.glob("*.py") if p.name not in STANDALONE)


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.name)
def test_example_runs_on_tabletop(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(path), "--cell", str(TABLETOP)])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "done" in out.out


def test_clear_table_runs_on_kuka(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(EXAMPLES / "programs" / "clear_table.yaml"), "--cell", str(KUKA), "--seed", "5"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err


def test_demo_puts_every_block_in_the_bin(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    picture = tmp_path / "demo.png"
    code = main(["demo", "--picture", str(picture)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "3/3 objects in 'bin'" in out
    import imageio.v3 as iio

    image = iio.imread(picture)
    assert image.shape == (480, 640, 3) and image.std() > 20  # a scene, not a blank frame


@pytest.mark.parametrize("cell", [TABLETOP, KUKA], ids=["tabletop", "kuka"])
def test_example_cells_check(cell: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cell", "check", str(cell)]) == 0
